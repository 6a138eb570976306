package caddytest

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkResume measures, per resume, the time from a connection's loss
// (its TCP connection cut) to the resumed welcome on a new connection, and
// reports the median and 99th percentile:
//
//	go test -run XXX -bench Resume -benchtime 100x ./caddytest
func BenchmarkResume(b *testing.B) {
	loadCaddyfile(b, signalingSite, false)
	base := roomURL + "bench-resume"
	other, _ := join(b, base)
	c, w := join(b, base)
	other.expect("peer-joined")
	token, last := w.Resume, w.Seq
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		c.conn.UnderlyingConn().Close()
		c = dial(b, fmt.Sprintf("%s&resume=%s&last_seq=%d", base, token, last), "")
		w := c.expect("welcome")
		took = append(took, time.Since(start))
		if !w.Resumed {
			b.Fatalf("not resumed: %+v", w)
		}
		token = w.Resume
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkAwayPeerMemory measures the heap one away peer holds: peers in
// rooms of 5 that received a few signals, then lost their connections,
// against the heap before they joined:
//
//	go test -run XXX -bench AwayPeerMemory -benchtime 1x ./caddytest
func BenchmarkAwayPeerMemory(b *testing.B) {
	const peers = 1000
	// A hub of its own, shut down (its away peers with it) by the next load.
	site := strings.Replace(signalingSite, "resume_window 2s", "resume_window 5m\n\t\t\thub awaybench", 1)
	site = strings.Replace(site, "burst 1000000", "burst 1000000\n\t\t\t\tconnections_per_ip 100000", 1)
	loadCaddyfile(b, site, false)
	b.Cleanup(func() { loadCaddyfile(b, signalingSite, false) })
	before := heapInUse()
	for i := range peers {
		// No cleanup holding on to the client: its buffers are not the
		// server's.
		c, err := dialErr(fmt.Sprintf("%saway%d", roomURL, i/5), "")
		if err != nil {
			b.Fatal(err)
		}
		c.t = b
		c.expect("welcome")
		c.conn.UnderlyingConn().Close()
	}
	eventually(b, 30*time.Second, "every peer away", func() bool {
		return scrapeMetrics(b)[`caddy_webrtc_signaling_away_peers{hub="awaybench"}`] == peers
	})
	after := heapInUse()
	b.ReportMetric(float64(after-before)/peers, "B/away-peer")
}

func heapInUse() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
