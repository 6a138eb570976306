package caddytest

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/signaling"
)

// hubTotals sums rooms and peers over every live hub.
func hubTotals() (rooms, peers int) {
	for _, st := range signaling.LiveHubs() {
		rooms += st.Rooms
		peers += st.Peers
	}
	return rooms, peers
}

// slowReaderSite relays floods of large frames.
const slowReaderSite = `
http://localhost:9080 {
	webrtc_signaling {
		max_message_size 64KiB
		# These tests relay floods on purpose: no frame rate limit.
		limits {
			frames_per_second 1000000
			burst 1000000
		}
	}
}
`

func TestSlowReaderIsDisconnected(t *testing.T) {
	loadCaddyfile(t, slowReaderSite, false)
	url := "ws://localhost:9080/?room=slow"
	reader, _ := join(t, url)
	sender, _ := join(t, url)
	reader.expect("peer-joined")

	// The slow peer reads its welcome, then never again; a small receive
	// buffer makes the server's side fill up sooner.
	slow := dialSlowReader(t, url)
	slowID := slow.expect("welcome").ID
	reader.expect("peer-joined")
	sender.expect("peer-joined")
	floodUntilDropped(t, reader, sender, slowID)
}

// floodUntilDropped broadcasts large frames from sender until the server
// drops the peer slowID, which reads nothing; reader keeps up with
// everything and is told.
func floodUntilDropped(t *testing.T, reader, sender *wsClient, slowID string) {
	t.Helper()
	payload := strings.Repeat("x", 60<<10)
	got := make(chan string, 1)
	go func() {
		for {
			f, err := reader.read()
			if err != nil {
				got <- "read error: " + err.Error()
				return
			}
			if f.Type == "peer-left" {
				got <- f.ID
				return
			}
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	var sent int
	for left := false; !left; {
		select {
		case id := <-got:
			if id != slowID {
				t.Fatalf("reader got %q, want peer-left for the slow peer %q", id, slowID)
			}
			left = true
		default:
			if time.Now().After(deadline) {
				t.Fatalf("slow peer still connected after %d broadcasts", sent)
			}
			sender.send(map[string]any{"type": "broadcast", "data": payload})
			sent++
		}
	}
	t.Logf("slow peer dropped after %d broadcasts of 60 KiB", sent)
	if f := sender.expect("peer-left"); f.ID != slowID {
		t.Fatalf("sender got peer-left %q, want %q", f.ID, slowID)
	}
	sender.roundTrip()
}

// dialSmallReadBuffer dials with a small receive buffer, so that the
// server's side fills up soon once the test stops reading.
func dialSmallReadBuffer(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	return c, err
}

// dialSlowReader opens a connection with a small receive buffer.
func dialSlowReader(t *testing.T, url string) *wsClient {
	t.Helper()
	d := websocket.Dialer{NetDialContext: dialSmallReadBuffer}
	conn, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &wsClient{t: t, conn: conn}
	t.Cleanup(c.leave)
	return c
}

func TestChurnLeavesNothingBehind(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	// Warm up once so lazily started goroutines are in the baseline.
	w, _ := join(t, roomURL+"warm")
	w.leave()
	eventually(t, 10*time.Second, "the warm-up room to go", func() bool { r, _ := hubTotals(); return r == 0 })
	baseline := runtime.NumGoroutine()

	const workers, rounds = 16, 12
	inParallel(t, workers, func(w int) error {
		for r := range rounds {
			room := roomURL + "churn" + string(rune('a'+(w+r)%5))
			c, err := dialErr(room, "")
			if err != nil {
				return err
			}
			c.t = t
			if f, err := c.read(); err != nil || (f.Type != "welcome" && f.Code != "room_full") {
				return fmt.Errorf("first frame %+v, %v", f, err)
			}
			if r%3 == 0 {
				_ = c.conn.WriteJSON(map[string]any{"type": "broadcast", "data": r})
			}
			if r%4 == 0 { // an abrupt drop rather than a close handshake
				c.conn.UnderlyingConn().Close()
			} else {
				_ = c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
				c.conn.Close()
			}
		}
		return nil
	})
	eventually(t, 20*time.Second, "every room and peer to be freed", func() bool {
		r, p := hubTotals()
		return r == 0 && p == 0
	})
	// The admin endpoint says the same.
	var stats struct {
		Hubs map[string]struct{ Rooms, Peers int } `json:"hubs"`
	}
	adminJSON(t, "/webrtc/signaling", &stats)
	if h, ok := stats.Hubs["default"]; !ok || h.Rooms != 0 || h.Peers != 0 {
		t.Fatalf("admin stats after churn: %+v", stats)
	}
	// Each connection runs two goroutines; a leak of even a few
	// connections' worth shows.
	eventually(t, 20*time.Second, "goroutines to return to the baseline", func() bool {
		return runtime.NumGoroutine() <= baseline+4
	})
}

// inParallel runs work(0), ..., work(n-1) on goroutines of their own and
// fails the test with their errors.
func inParallel(t *testing.T, n int, work func(w int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- work(w)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestReloadKeepsPeersConnected(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	url := roomURL + "reload"
	a, _ := join(t, url)
	b, _ := join(t, url)
	a.expect("peer-joined")
	var stats struct {
		Hubs map[string]struct{ Rooms, Peers int } `json:"hubs"`
	}
	adminJSON(t, "/webrtc/signaling", &stats)
	if h := stats.Hubs["default"]; h.Rooms != 1 || h.Peers != 2 {
		t.Fatalf("admin stats with one room of two: %+v", stats)
	}

	// An equivalent config with a changed option, and then the same config
	// forced: both are real reloads that replace the handler.
	loadCaddyfile(t, strings.Replace(signalingSite, "ping_interval 2s", "ping_interval 3s", 1), false)
	loadCaddyfile(t, strings.Replace(signalingSite, "ping_interval 2s", "ping_interval 3s", 1), true)

	a.signal(b.id, "after reload")
	if f := b.expect("signal"); f.From != a.id {
		t.Fatalf("after reload: %+v", f)
	}
	c, w := join(t, url)
	if len(w.Peers) != 2 {
		t.Fatalf("new peer after reload sees %d peers, want 2", len(w.Peers))
	}
	a.expect("peer-joined")
	b.expect("peer-joined")
	c.roundTrip()
}

func TestRemovedHandlerClosesPeersWithGoingAway(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	a, _ := join(t, roomURL+"bye")
	// A config without the signaling handler releases the hub.
	loadCaddyfile(t, "http://localhost:9080 {\n\trespond \"no calls today\"\n}\n", false)
	a.expectClose(websocket.CloseGoingAway)
	eventually(t, 10*time.Second, "the hub to be gone", func() bool { return len(signaling.LiveHubs()) == 0 })
}

func TestCaddyStopClosesPeersWithGoingAway(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	a, _ := join(t, roomURL+"stop")
	b, _ := join(t, roomURL+"stop")
	a.expect("peer-joined")
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	a.expectClose(websocket.CloseGoingAway)
	b.expectClose(websocket.CloseGoingAway)
	// Bring the admin endpoint back for the tests that follow.
	if err := caddy.Load([]byte(initConfig), true); err != nil {
		t.Fatal(err)
	}
}

// A burst far larger than a peer's queue reaches a reader that keeps
// reading, in order: the sender is paced, the reader is not dropped.
func TestBurstIsPacedNotDropped(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	a, _ := join(t, roomURL+"burst")
	b, _ := join(t, roomURL+"burst")
	a.expect("peer-joined")
	const n = 5000
	errs := make(chan error, 1)
	go func() {
		for i := range n {
			f, err := b.read()
			if err == nil && (f.Type != "signal" || string(f.Data) != fmt.Sprint(i)) {
				err = fmt.Errorf("frame %d: %+v", i, f)
			}
			if err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for i := range n {
		a.signal(b.id, i)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	a.roundTrip()
}

// A peer that answers no pings (it stopped reading, like a dead network
// path) leaves within about two ping intervals (2s here), and the others
// are told.
func TestDeadPeerLeavesAfterMissedPings(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	watcher, _ := join(t, roomURL+"dead")
	silent, _ := join(t, roomURL+"dead") // reads its welcome, then nothing
	watcher.expect("peer-joined")
	start := time.Now()
	if f := watcher.expect("peer-left"); f.ID != silent.id {
		t.Fatalf("peer-left %q, want %q", f.ID, silent.id)
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Fatalf("dropped after %s, before two ping intervals passed", took)
	}
	t.Logf("silent peer dropped after %s (ping_interval 2s)", time.Since(start).Round(100*time.Millisecond))
}
