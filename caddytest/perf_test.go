package caddytest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling"
)

// idleSite holds many idle peers from one address, pinging as in production.
const idleSite = `
http://localhost:9080 {
	handle /rtc/* {
		webrtc_signaling {
			hub idle
			limits {
				connections_per_ip 1000000
			}
		}
	}
}
`

// BenchmarkIdlePeersThroughCaddy is signaling's BenchmarkIdlePeers through
// Caddy's route and middleware: PERF_PEERS (default 2000) idle peers, 5 to
// a room, opened by a child process so that only Caddy's memory counts.
//
//	flock /tmp/caddytest.lock go test -run '^$' -bench IdlePeersThroughCaddy -benchtime 1x ./caddytest/
func BenchmarkIdlePeersThroughCaddy(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("PERF_PEERS")); err == nil {
		n = v
	}
	loadCaddyfile(b, idleSite, false)
	for range b.N {
		before := sampleMem()
		child := exec.Command(os.Args[0], "-test.run=^TestIdleClientsHelper$")
		child.Env = append(os.Environ(), "PERF_HELPER_ADDR=localhost:9080", "PERF_PEERS="+strconv.Itoa(n))
		in, _ := child.StdinPipe()
		out, _ := child.StdoutPipe()
		child.Stderr = os.Stderr
		if err := child.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "ready") {
			b.Fatalf("helper: %q %v", line, err)
		}
		waitIdlePeers(b, n)
		after := sampleMem()
		for i, unit := range []string{"heap+stack-B/peer", "heap-B/peer", "stack-B/peer", "rss-B/peer", "goroutines/peer"} {
			b.ReportMetric(float64(after[i]-before[i])/float64(n), unit)
		}
		_ = in.Close()
		_ = child.Wait()
		waitIdlePeers(b, 0)
	}
}

func waitIdlePeers(b *testing.B, n int) {
	deadline := time.Now().Add(2 * time.Minute)
	for signaling.LiveHubs()["idle"].Peers != n {
		if time.Now().After(deadline) {
			b.Fatalf("%d peers, want %d", signaling.LiveHubs()["idle"].Peers, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sampleMem returns heap+stack, heap, stack, RSS and goroutines after GC.
func sampleMem() [5]int64 {
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var rss int64
	status, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb << 10
		}
	}
	return [5]int64{int64(m.HeapInuse + m.StackInuse), int64(m.HeapInuse), int64(m.StackInuse), rss, int64(runtime.NumGoroutine())}
}

// TestIdleClientsHelper is the benchmark's client process; as a test it
// does nothing.
func TestIdleClientsHelper(t *testing.T) {
	addr := os.Getenv("PERF_HELPER_ADDR")
	if addr == "" {
		t.Skip("helper process of BenchmarkIdlePeersThroughCaddy")
	}
	n, _ := strconv.Atoi(os.Getenv("PERF_PEERS"))
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := dialIdle(addr, fmt.Sprintf("r%d", i/5))
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

// dialIdle opens a WebSocket with a minimal handshake and then reads
// nothing, so an idle peer costs the client next to nothing.
func dialIdle(addr, room string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	req := "GET /rtc/ws?room=" + room + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return nil, err
	}
	var resp []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(resp, []byte("\r\n\r\n")) {
		if _, err := c.Read(one); err != nil {
			return nil, err
		}
		resp = append(resp, one[0])
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101")) {
		return nil, fmt.Errorf("handshake: %q", resp)
	}
	return c, nil
}
