package loadtest

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/bench/barerelay/relay"
)

// testTimeout bounds a whole Run in these tests.
const testTimeout = 30 * time.Second

// wsURL turns an httptest server's http:// URL (on 127.0.0.1) into ws://.
func wsURL(srv *httptest.Server, path string) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + path
}

func runFor(t *testing.T, cfg Config) (Summary, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var progress bytes.Buffer
	s, err := Run(ctx, cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	return s, progress.String()
}

// checkClean fails unless every peer joined and every signal arrived once,
// in order.
func checkClean(t *testing.T, s Summary, peers int) {
	t.Helper()
	if s.Connected != peers || s.Failed != 0 || s.Dropped != 0 {
		t.Errorf("connected %d failed %d dropped %d, want %d, 0, 0 (%v %s)", s.Connected, s.Failed, s.Dropped, peers, s.Failures, s.FirstError)
	}
	if s.Delivered == 0 || s.Lost != 0 || s.Duplicated != 0 || s.Misordered != 0 || s.Delivered != s.Sent {
		t.Errorf("sent %d delivered %d lost %d dup %d misordered %d", s.Sent, s.Delivered, s.Lost, s.Duplicated, s.Misordered)
	}
	if len(s.ServerErrors) != 0 {
		t.Errorf("server errors: %v", s.ServerErrors)
	}
	if s.JoinP50 <= 0 || s.JoinP99 < s.JoinP50 || s.RelayP50 <= 0 || s.RelayMax < s.RelayP99 || s.RelayP99 < s.RelayP50 {
		t.Errorf("implausible latencies: %+v", s)
	}
}

func TestRunAgainstBareRelay(t *testing.T) {
	srv := httptest.NewServer(relay.New())
	defer srv.Close()
	const peers, rate = 12, 20
	s, progress := runFor(t, Config{
		URL: wsURL(srv, "/rtc/ws"), Peers: peers, RoomSize: 5, Rate: rate,
		Duration: time.Second, ProgressInterval: 200 * time.Millisecond,
	})
	checkClean(t, s, peers)
	// Every peer has a room-mate (rooms of 5, 5 and 2), so each sends
	// about rate signals in the second; allow for start-up phase.
	if min := uint64(peers * rate / 2); s.Sent < min {
		t.Errorf("sent %d signals, want at least %d", s.Sent, min)
	}
	if !strings.Contains(progress, "connected 12/12") {
		t.Errorf("no progress line with all peers connected:\n%s", progress)
	}
}

func TestRunFlatOut(t *testing.T) {
	srv := httptest.NewServer(relay.New())
	defer srv.Close()
	s, _ := runFor(t, Config{
		URL: wsURL(srv, "/"), Peers: 4, RoomSize: 2, FlatOut: true, Window: 4,
		Size: 100, Duration: 500 * time.Millisecond,
	})
	checkClean(t, s, 4)
}

func TestRunIdleOnePeerRooms(t *testing.T) {
	srv := httptest.NewServer(relay.New())
	defer srv.Close()
	// A peer alone in its room has nobody to signal: it sends nothing
	// and that is no error.
	s, _ := runFor(t, Config{URL: wsURL(srv, "/"), Peers: 3, RoomSize: 1, Rate: 50, Duration: 200 * time.Millisecond})
	if s.Connected != 3 || s.Sent != 0 || s.Lost != 0 {
		t.Fatalf("summary %+v", s)
	}
}

// Churners come and go beside the signaling peers, which still get every
// signal once and in order.
func TestRunChurn(t *testing.T) {
	srv := httptest.NewServer(relay.New())
	defer srv.Close()
	const churners, hold = 6, 100 * time.Millisecond
	s, _ := runFor(t, Config{
		URL: wsURL(srv, "/"), Peers: 4, RoomSize: 2, Rate: 20, Duration: time.Second,
		ChurnPeers: churners, ChurnHold: hold,
	})
	checkClean(t, s, 4)
	c := s.Churn
	if c == nil {
		t.Fatal("no churn in the summary")
	}
	// Each churner starts within a hold and cycles every hold (give or
	// take a quarter) plus a join, for a second: several cycles each.
	if c.Peers != churners || c.Failed != 0 || c.Joins < 2*churners || c.Leaves < c.Joins-churners || c.JoinP50 <= 0 {
		t.Fatalf("churn %+v", c)
	}
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil || !strings.Contains(text.String(), "churn      6 peers holding 100ms") {
		t.Fatalf("text summary %v:\n%s", err, text.String())
	}
}

func TestRunTooManyRequests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too many connections", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	s, progress := runFor(t, Config{URL: wsURL(srv, "/"), Peers: 3, Rate: 1, Duration: 100 * time.Millisecond})
	if s.Connected != 0 || s.Failed != 3 || s.Failures[tooManyCode] != 3 {
		t.Fatalf("connected %d failed %d failures %v", s.Connected, s.Failed, s.Failures)
	}
	if !strings.Contains(progress, "connections_per_ip 100000") {
		t.Fatalf("no 429 hint in the output:\n%s", progress)
	}
}

func TestConfigChecked(t *testing.T) {
	for _, c := range []Config{
		{},
		{URL: "http://127.0.0.1:1/", Peers: 1},
		{URL: "ws://127.0.0.1:1/", Peers: 0},
		{URL: "ws://127.0.0.1:1/", Peers: 1, Rate: -1},
		{URL: "ws://127.0.0.1:1/", Peers: 1, Protocol: "sip"},
	} {
		if _, err := Run(context.Background(), c, nil); err == nil {
			t.Errorf("Run(%+v) accepted the config", c)
		}
	}
}

func TestRunTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(relay.New())
	// The refused handshakes below are expected; keep them out of the log.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/"
	// The test server's certificate is self-signed, like Caddy's internal
	// CA: refused unless Insecure.
	s, _ := runFor(t, Config{URL: url, Peers: 2, Rate: 0, Duration: 50 * time.Millisecond})
	if s.Connected != 0 || s.Failures[codeDialError] != 2 {
		t.Fatalf("verified TLS: connected %d failures %v", s.Connected, s.Failures)
	}
	s, _ = runFor(t, Config{URL: url, Peers: 2, RoomSize: 2, Rate: 20, Duration: 300 * time.Millisecond, Insecure: true})
	checkClean(t, s, 2)
}
