package natshub

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// testNodeTimeout is short so that dead-server cases finish quickly.
const testNodeTimeout = 3 * time.Second

// natsServer is an embedded NATS with JetStream, on loopback.
type natsServer struct {
	t    *testing.T
	dir  string
	port int
	srv  *server.Server
}

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	n := &natsServer{t: t, dir: t.TempDir(), port: freePort(t)}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs the server on n.port with its store in n.dir, so a restart
// keeps the buckets.
func (n *natsServer) start() {
	n.t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: n.port, JetStream: true, StoreDir: n.dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		n.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("NATS did not start")
	}
	n.srv = srv
}

func (n *natsServer) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

var prefixes atomic.Int64

// newHubs opens count hubs (one per "server") named name on the NATS at
// url, sharing a fresh prefix; they are shut down when the test ends.
func newHubs(t *testing.T, url string, count int) []*Hub {
	t.Helper()
	prefix := fmt.Sprint("t", prefixes.Add(1))
	var out []*Hub
	for range count {
		b := &Backend{URLs: []string{url}, Prefix: prefix, NodeTimeout: caddy.Duration(testNodeTimeout)}
		b.setDefaults()
		if err := b.Validate(); err != nil {
			t.Fatal(err)
		}
		h, err := b.OpenHub("default")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.(*Hub))
		t.Cleanup(h.Shutdown)
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
