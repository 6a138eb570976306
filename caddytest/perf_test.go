package caddytest

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/internal/idlepeers"
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
	if v, err := strconv.Atoi(os.Getenv(idlepeers.PeersEnv)); err == nil {
		n = v
	}
	loadCaddyfile(b, idleSite, false)
	for range b.N {
		before := sampleMem()
		stop := idlepeers.Start(b, "localhost:9080", n)
		waitIdlePeers(b, n)
		after := sampleMem()
		for i, unit := range []string{"heap+stack-B/peer", "heap-B/peer", "stack-B/peer", "rss-B/peer", "goroutines/peer"} {
			b.ReportMetric(float64(after[i]-before[i])/float64(n), unit)
		}
		stop()
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

// TestIdleClientsHelper is the idle-peers benchmark's client process; as
// a test it does nothing.
func TestIdleClientsHelper(t *testing.T) { idlepeers.Serve(t, "/rtc/ws") }
