package caddytest

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrapeMetrics reads Caddy's /metrics on the admin endpoint into a map
// from series (name and labels, as exposed: labels sorted by name) to value.
func scrapeMetrics(t testing.TB) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// expectMetrics polls /metrics until each counter grew by its delta since
// before and each gauge has its value. Counters of frames sent are
// updated once the bytes are written, so a client can see a frame a moment
// before a scrape counts it.
func expectMetrics(t testing.TB, before, deltas, gauges map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		after := scrapeMetrics(t)
		var wrong []string
		for series, want := range deltas {
			if got := after[series] - before[series]; got != want {
				wrong = append(wrong, fmt.Sprintf("%s grew by %v, want %v", series, got, want))
			}
		}
		for series, want := range gauges {
			if got := after[series]; got != want {
				wrong = append(wrong, fmt.Sprintf("%s is %v, want %v", series, got, want))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics after 10 s:\n%s", strings.Join(wrong, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
