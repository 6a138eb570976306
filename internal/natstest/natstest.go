// Package natstest runs the real NATS server (nats-server/v2) in-process
// for tests, with JetStream on and its store in a temp dir, on loopback:
// one server that can be stopped and started again, or a routed cluster.
package natstest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyproc"
)

// Server is an embedded NATS with JetStream. Stop and Start keep its port
// and store, so a restart finds its buckets again.
type Server struct {
	t    testing.TB
	Dir  string
	Port int
	Srv  *server.Server // nil while stopped
}

// New picks a port and a store without starting the server; it is stopped
// when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, Dir: t.TempDir(), Port: caddyproc.FreePort(t)}
	t.Cleanup(s.Stop)
	return s
}

// Run is New and Start.
func Run(t testing.TB) *Server {
	t.Helper()
	s := New(t)
	s.Start()
	return s
}

// Start runs the server and waits until it takes connections.
func (s *Server) Start() {
	s.t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: s.Port, JetStream: true, StoreDir: s.Dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("NATS did not start")
	}
	s.Srv = srv
}

// Stop shuts the server down (its clients see their connection close).
func (s *Server) Stop() {
	if s.Srv != nil {
		s.Srv.Shutdown()
		s.Srv.WaitForShutdown()
		s.Srv = nil
	}
}

// URL is the client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.Port) }

// Cluster runs n routed NATS servers with clustered JetStream and waits
// until they have a JetStream meta leader.
func Cluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	clientPorts, routePorts := make([]int, n), make([]int, n)
	var routes []string
	for i := range n {
		clientPorts[i], routePorts[i] = caddyproc.FreePort(t), caddyproc.FreePort(t)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
	}
	var out []*server.Server
	for i := range n {
		srv, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprint("n", i), Host: "127.0.0.1", Port: clientPorts[i],
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "webrtc-test", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		go srv.Start()
		t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		out = append(out, srv)
	}
	for _, srv := range out {
		if !srv.ReadyForConnections(10 * time.Second) {
			t.Fatal("NATS did not start")
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !hasLeader(out) {
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out
}

func hasLeader(servers []*server.Server) bool {
	for _, srv := range servers {
		if srv.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

// URLs are the client URLs of servers.
func URLs(servers []*server.Server) []string {
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	return urls
}

// ClusterProcesses runs n nats-server processes (built from the module's
// nats-server/v2) routed into one cluster with JetStream, so that a test
// can kill one with SIGKILL. It returns them and their client URLs; the
// cluster elects its JetStream leader on its own time, so a client waits
// for its first JetStream operation to succeed.
func ClusterProcesses(t testing.TB, n int) ([]*caddyproc.Proc, []string) {
	t.Helper()
	bin := caddyproc.Build(t, "github.com/nats-io/nats-server/v2")
	clientPorts, routePorts := make([]int, n), make([]int, n)
	var routes, urls []string
	for i := range n {
		clientPorts[i], routePorts[i] = caddyproc.FreePort(t), caddyproc.FreePort(t)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	var out []*caddyproc.Proc
	for i := range n {
		dir := t.TempDir()
		out = append(out, caddyproc.Run(t, dir, clientPorts[i], bin,
			"--server_name", fmt.Sprint("n", i), "-a", "127.0.0.1", "-p", fmt.Sprint(clientPorts[i]),
			"-js", "-sd", dir, "--cluster_name", "webrtc-test",
			"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i]),
			"--routes", strings.Join(routes, ",")))
	}
	return out, urls
}
