package signaling

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/internal/idlepeers"
	"github.com/caddy-webrtc/caddy-webrtc/internal/wstest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
)

// Performance benchmarks (issue 9). They run the real Handler behind an
// httptest.Server, without Caddy's middleware, so they measure this
// package's own costs:
//
//	go test -run '^$' -bench Idle -benchtime 1x ./signaling/          # memory per idle peer
//	go test -run '^$' -bench Relay -benchtime 20000x ./signaling/     # relay cost and latency
//
// PERF_PEERS sets the idle peer count (default 2000).

// newBenchServer serves h the way Caddy would reach it: with the request's
// replacer in the context.
func newBenchServer(tb testing.TB) (*httptest.Server, *Handler) {
	return newBenchServerOn(tb, nil)
}

// newBenchServerOn is newBenchServer with its listener wrapped by wrap,
// unless nil.
func newBenchServerOn(tb testing.TB, wrap func(net.Listener) net.Listener) (*httptest.Server, *Handler) {
	tb.Helper()
	return newServerWith(tb, wrap, nil)
}

// newServerWith is newBenchServerOn with the handler changed by configure,
// unless nil, before the server starts.
func newServerWith(tb testing.TB, wrap func(net.Listener) net.Listener, configure func(*Handler)) (*httptest.Server, *Handler) {
	tb.Helper()
	h := &Handler{
		Room:           DefaultRoom,
		MaxPeers:       DefaultMaxPeers,
		MaxMessageSize: DefaultMaxMessageSize,
		PingInterval:   caddy.Duration(DefaultPingInterval),
		Hub:            "bench",
		// Benchmarks relay far beyond a person's frame rate.
		Limits:  Limits{FramesPerSecond: 1e9, Burst: 1e9, ConnectionsPerIP: 1 << 30}.withDefaults(),
		metrics: newHubMetrics("bench"),
		logger:  zap.NewNop(),
	}
	h.useHub(hub.NewMemoryHub(), newHubState(h.Hub))
	h.origins, _ = parseOrigins([]string{"*"})
	if configure != nil {
		configure(h)
		// What configure changed (the hub, its name, resume, limits)
		// reaches the sessions only through their config, built again.
		if h.Hub != h.sessCfg.HubName {
			h.state = newHubState(h.Hub)
		}
		reconfigured(h)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repl := caddyhttp.NewTestReplacer(r)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
		_ = h.ServeHTTP(w, r, nil)
	}))
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	tb.Cleanup(func() {
		h.hub.Shutdown()
		srv.Close()
	})
	return srv, h
}

// reconfigured rebuilds the config h's sessions share, for a test that
// changed h's options after newBenchServer (Provision builds it once).
func reconfigured(h *Handler) { h.useHub(h.hub, h.state) }

// BenchmarkIdlePeers opens PERF_PEERS idle peers (5 to a room) from a child
// process, so that only the server's memory is counted, and reports what
// each costs: heap+stack in use and resident set size.
func BenchmarkIdlePeers(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv(idlepeers.PeersEnv)); err == nil {
		n = v
	}
	srv, h := newBenchServer(b)
	for range b.N {
		before := memNow()
		stop := idlepeers.Start(b, srv.Listener.Addr().String(), n)
		waitPeers(b, h, n)
		after := memNow()
		writeHeapProfile(b)
		b.ReportMetric(float64(after.heapStack-before.heapStack)/float64(n), "heap+stack-B/peer")
		b.ReportMetric(float64(after.heap-before.heap)/float64(n), "heap-B/peer")
		b.ReportMetric(float64(after.stack-before.stack)/float64(n), "stack-B/peer")
		b.ReportMetric(float64(after.rss-before.rss)/float64(n), "rss-B/peer")
		b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/peer")
		stop()
		waitPeers(b, h, 0)
	}
}

// writeHeapProfile writes the heap with the peers connected to the file
// PERF_HEAPPROFILE names, if any (-memprofile sees them gone).
func writeHeapProfile(b *testing.B) {
	path := os.Getenv("PERF_HEAPPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

func waitPeers(b *testing.B, h *Handler, n int) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if h.hub.Stats().Peers == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d peers, want %d", h.hub.Stats().Peers, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type memSample struct{ heap, stack, heapStack, rss, goroutines int64 }

// memNow samples memory after a GC, once the peers' goroutines are parked.
func memNow() memSample {
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.GC() // the second one also shrinks stacks grown during setup
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{
		heap:       int64(m.HeapInuse),
		stack:      int64(m.StackInuse),
		heapStack:  int64(m.HeapInuse + m.StackInuse),
		rss:        rssBytes(),
		goroutines: int64(runtime.NumGoroutine()),
	}
}

func rssBytes() int64 {
	status, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestIdleClientsHelper is the idle-peers benchmark's client process; as
// a test it does nothing.
func TestIdleClientsHelper(t *testing.T) { idlepeers.Serve(t, "/") }

// relayPair joins two peers to one room and returns them, b's id, and a
// frame from a to b.
func relayPair(b testing.TB) (a, c *websocket.Conn, frame []byte) {
	srv, _ := newBenchServer(b)
	return wstest.JoinPair(b, srv, websocket.DefaultDialer)
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRelayFlood sends b.N signal frames from one peer to another as
// fast as the relay takes them. The client side is in the same process, so
// cpu-ns/frame includes both WebSocket clients.
func BenchmarkRelayFlood(b *testing.B) {
	a, c, frame := relayPair(b)
	done := make(chan error, 1)
	b.ReportAllocs()
	cpu := cpuTime()
	b.ResetTimer()
	go func() {
		for range b.N {
			if _, _, err := c.ReadMessage(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range b.N {
		if err := a.WriteMessage(websocket.TextMessage, frame); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/frame")
}

// BenchmarkRelayLatency sends one frame at a time and waits for it to
// arrive, reporting the median and 99th percentile of the one-way trip.
func BenchmarkRelayLatency(b *testing.B) {
	a, c, frame := relayPair(b)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if err := a.WriteMessage(websocket.TextMessage, frame); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
