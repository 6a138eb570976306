// Command hookrecv is the webhook receiver of bench/webhooks.sh: it takes
// a hub's webhooks and, when stopped (SIGINT or SIGTERM), prints as JSON
// how many arrived, by type, how many were duplicates (an event id seen
// before), at what rate, and their delivery latency: from the event's
// "at" (when the server noted it) to its arrival here, on the one host's
// clock. With -hang it answers nothing: each request waits until the
// sender gives up on it (its timeout), as a receiver that hangs does.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/loadtest"
)

// summary is what hookrecv prints.
type summary struct {
	Events     int            `json:"events"`
	ByType     map[string]int `json:"by_type"`
	Duplicates int            `json:"duplicates"`
	// PerSec is events over the time from the first to the last.
	PerSec     float64 `json:"per_sec"`
	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyP99 float64 `json:"latency_p99_ms"`
	LatencyMax float64 `json:"latency_max_ms"`
	Unreadable int     `json:"unreadable"`
}

type receiver struct {
	mu          sync.Mutex
	seen        map[string]bool
	byType      map[string]int
	events, dup int
	unreadable  int
	first, last time.Time
	latency     loadtest.Histogram
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var ev struct {
		ID, Type string
		At       time.Time
	}
	if err == nil {
		err = json.Unmarshal(body, &ev)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err != nil || ev.ID == "" {
		rc.unreadable++
		http.Error(w, "unreadable event", http.StatusBadRequest)
		return
	}
	if rc.seen[ev.ID] {
		rc.dup++
	}
	rc.seen[ev.ID] = true
	rc.byType[ev.Type]++
	rc.events++
	if rc.first.IsZero() {
		rc.first = now
	}
	rc.last = now
	rc.latency.Record(now.Sub(ev.At))
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) summary() summary {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	s := summary{
		Events: rc.events, ByType: rc.byType, Duplicates: rc.dup, Unreadable: rc.unreadable,
		LatencyP50: ms(rc.latency.Quantile(0.50)), LatencyP99: ms(rc.latency.Quantile(0.99)), LatencyMax: ms(rc.latency.Max()),
	}
	if d := rc.last.Sub(rc.first).Seconds(); d > 0 {
		s.PerSec = float64(rc.events) / d
	}
	return s
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	hang := flag.Bool("hang", false, "answer nothing: hold every request until the sender gives up")
	flag.Parse()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, "listening on", l.Addr())
	rc := &receiver{seen: map[string]bool{}, byType: map[string]int{}}
	var h http.Handler = rc
	if *hang {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	}
	go func() { _ = http.Serve(l, h) }()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rc.summary())
}
