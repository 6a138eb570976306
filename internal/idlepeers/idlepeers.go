// Package idlepeers opens many idle signaling peers from a child process,
// for the idle-memory benchmarks: the server's memory is then measured
// without the clients' in it. A benchmark re-runs its own test binary with
// HelperEnv set; the package's test TestIdleClientsHelper calls Serve.
package idlepeers

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Environment of the child process: the server's address and the count.
const (
	HelperEnv = "PERF_HELPER_ADDR"
	PeersEnv  = "PERF_PEERS"
)

// RoomSize is how many idle peers share a room.
const RoomSize = 5

// Serve is the child process: it opens the peers on path (such as
// "/rtc/ws"), prints "ready", and holds them until its stdin closes. It
// skips when the test binary is not running as the helper.
func Serve(t *testing.T, path string) {
	addr := os.Getenv(HelperEnv)
	if addr == "" {
		t.Skip("helper process of the idle-peers benchmark")
	}
	n, _ := strconv.Atoi(os.Getenv(PeersEnv))
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := Dial(addr, path, fmt.Sprintf("r%d", i/RoomSize))
		if err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	_, _ = os.Stdin.Read(make([]byte, 1))
	for _, c := range conns {
		_ = c.Close()
	}
}

// Dial opens a WebSocket with a minimal handshake and reads nothing after
// the response header: an idle peer costs the client next to nothing.
func Dial(addr, path, room string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	req := "GET " + path + "?room=" + room + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	var resp []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(resp, []byte("\r\n\r\n")) {
		if _, err := c.Read(one); err != nil {
			c.Close()
			return nil, err
		}
		resp = append(resp, one[0])
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101")) {
		c.Close()
		return nil, fmt.Errorf("handshake: %q", resp)
	}
	return c, nil
}

// Start runs the current test binary again as the helper, opening n idle
// peers against addr, and returns once they are all connected. stop makes
// the helper close them and waits for it to exit.
func Start(tb testing.TB, addr string, n int) (stop func()) {
	tb.Helper()
	child := exec.Command(os.Args[0], "-test.run=^TestIdleClientsHelper$")
	child.Env = append(os.Environ(), HelperEnv+"="+addr, PeersEnv+"="+strconv.Itoa(n))
	in, err := child.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := child.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		tb.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		tb.Fatalf("idle-peers helper: %q %v", line, err)
	}
	return func() {
		_ = in.Close() // the helper exits, the peers leave
		_ = child.Wait()
	}
}
