//go:build linux

package ws

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/internal/wstest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/ws/evloop"
	"github.com/gorilla/websocket"
)

// loopHolds tells how many connections of h's the event loop reads
// (other tests' connections may still be on their way out).
func loopHolds(h *server) int {
	return evloop.Reading(func(r evloop.Reader) bool {
		s := r.(*loopReader).c.role.sess()
		return s != nil && s.Metrics() == session.Metrics(h.metrics)
	})
}

// Plain TCP connections are read by the event loop from their welcome on,
// and let go when they close.
func TestPlainTCPConnectionsAreReadByTheLoop(t *testing.T) {
	srv, h := newBenchServer(t)
	a, c, _ := wstest.JoinPair(t, srv, websocket.DefaultDialer)
	if n := loopHolds(h); n != 2 {
		t.Fatalf("the loop reads %d of the server's connections; 2 joined", n)
	}
	a.Close()
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for loopHolds(h) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the loop still reads %d closed connections", loopHolds(h))
		}
		time.Sleep(time.Millisecond) // polling the count
	}
}

// The loop answers control frames as gorilla's reader does: a ping with a
// pong carrying its data, a close frame with its code.
func TestLoopAnswersPingsAndCloses(t *testing.T) {
	a, c, _ := relayPair(t)
	go drain(c)
	pong := make(chan string, 1)
	a.SetPongHandler(func(data string) error { pong <- data; return nil })
	closed := make(chan error, 1)
	go func() { closed <- readUntilError(a) }()
	for _, data := range []string{"", "are you there"} {
		if err := a.WriteControl(websocket.PingMessage, []byte(data), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-pong:
			if got != data {
				t.Fatalf("pong carried %q, want %q", got, data)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no pong to a ping carrying %q", data)
		}
	}
	if err := a.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4321, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	var ce *websocket.CloseError
	if err := <-closed; !errors.As(err, &ce) || ce.Code != 4321 {
		t.Fatalf("after a close frame with 4321: %v; want the same code back", err)
	}
}

// readUntilError reads ws until it fails, and returns why.
func readUntilError(ws *websocket.Conn) error {
	for {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil {
			return err
		}
	}
}

// A frame a client must not send closes its connection with 1002 and the
// reason; its room-mate is not disturbed, and frames split into pieces of
// a byte still arrive whole.
func TestLoopRefusesBadFramesAndReassemblesPieces(t *testing.T) {
	a, c, frame := relayPair(t)
	conn := a.NetConn().(*net.TCPConn)
	_ = conn.SetNoDelay(true)
	// One frame a byte at a time, masked as a client's.
	wire := clientFrame(newTestRand(), websocket.TextMessage, true, frame)
	for i := range wire {
		if _, err := conn.Write(wire[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, got, err := c.ReadMessage(); err != nil || !strings.Contains(string(got), `"candidate"`) {
		t.Fatalf("a frame sent a byte at a time: got %.80s, %v", got, err)
	}
	// Unmasked: refused.
	bad := clientFrame(newTestRand(), websocket.TextMessage, true, frame)
	bad[1] &^= 0x80
	if _, err := conn.Write(bad); err != nil {
		t.Fatal(err)
	}
	var ce *websocket.CloseError
	if err := readUntilError(a); !errors.As(err, &ce) || ce.Code != websocket.CloseProtocolError || ce.Text != "bad MASK" {
		t.Fatalf("after an unmasked frame: %v; want 1002 bad MASK", err)
	}
	go drain(c)
	if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
		t.Fatalf("the room-mate: %v", err)
	}
}

// A runner held up by one connection (a sender waiting up to stallTimeout
// for room in a peer's full queue) holds up no other: another runner
// serves the other connections meanwhile.
func TestAHeldUpRunnerHoldsUpNoOtherPeer(t *testing.T) {
	// Every connection on one loop, so that the held-up connection and
	// the others share a runner.
	t.Cleanup(evloop.Restrict(1))
	srv, h := newBenchServer(t)
	h.MaxMessageSize = 128 << 10
	filler, slow, _ := wstest.JoinRoomPair(t, srv, "stalled", &websocket.Dialer{NetDialContext: smallReceiveBuffer})
	a, c, frame := wstest.JoinRoomPair(t, srv, "other", websocket.DefaultDialer)
	fillerFrames := make(chan []byte, 64)
	go func() {
		for {
			_ = filler.SetReadDeadline(time.Now().Add(time.Minute))
			_, b, err := filler.ReadMessage()
			if err != nil {
				close(fillerFrames)
				return
			}
			fillerFrames <- b
		}
	}()
	_ = slow // reads nothing after its welcome
	// The filler signals the slow peer, which reads nothing, until the
	// server stops answering the filler's pings: it is then held up.
	pad := strings.Repeat("x", 60<<10)
	held := false
	for i := 0; i < 2000 && !held; i++ {
		msg := `{"type":"broadcast","data":"` + pad + `"}`
		if err := filler.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := filler.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		held = !waitForPong(fillerFrames, time.Second)
	}
	if !held {
		t.Fatal("the slow peer's queue never filled up")
	}
	start := time.Now()
	if err := a.WriteMessage(websocket.TextMessage, frame); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(session.StallTimeout / 2))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("no frame in another room within %v while a sender was held up: %v", session.StallTimeout/2, err)
		}
		if strings.Contains(string(b), `"candidate"`) {
			break
		}
	}
	t.Logf("relayed in another room in %v while a sender was held up", time.Since(start))
}

// waitForPong reports whether a pong frame comes within d.
func waitForPong(frames <-chan []byte, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case b, ok := <-frames:
			if !ok {
				return false
			}
			if strings.Contains(string(b), `"type":"pong"`) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// smallReceiveBuffer dials with a small receive buffer, so that the
// server's side fills up soon once the client stops reading.
func smallReceiveBuffer(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	return c, err
}

// A peer that ignores the server's close frame and keeps sending is cut
// off once closeGrace is over, as a read deadline would cut it.
func TestAPeerIgnoringTheCloseIsCutAfterTheGrace(t *testing.T) {
	a, c, frame := relayPair(t)
	go drain(c)
	conn := a.NetConn()
	rng := newTestRand()
	// Too large a message: the session ends, with a close frame.
	big := clientFrame(rng, websocket.TextMessage, true, []byte(strings.Repeat("x", testMaxMessageSize+1)))
	if _, err := conn.Write(big); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < 5*session.CloseGrace {
		if _, err := conn.Write(clientFrame(rng, websocket.TextMessage, true, frame)); err != nil {
			t.Logf("cut off %v after its oversized message", time.Since(start))
			return
		}
	}
	t.Fatalf("a peer sending on after the close frame was still connected after %v", 5*session.CloseGrace)
}

// BenchmarkHeldRunnerHandover measures how long one runner held up by a
// sender (waiting for room in a slow reader's queue) holds up a peer of
// another room on the same loop: the worst gap between that peer's
// pongs over 3 s while a flood fills the slow reader's queue. Run it with
// -benchtime 1x and -count; compare against HELD=0, where the slow peer
// reads, on the same machine.
func BenchmarkHeldRunnerHandover(b *testing.B) {
	b.Cleanup(evloop.Restrict(1))
	srv, h := newBenchServer(b)
	h.MaxMessageSize = 128 << 10
	filler, slow, _ := wstest.JoinRoomPair(b, srv, "stalled", &websocket.Dialer{NetDialContext: smallReceiveBuffer})
	if os.Getenv("HELD") == "0" {
		go drain(slow)
	}
	a, c, _ := wstest.JoinRoomPair(b, srv, "other", websocket.DefaultDialer)
	go drain(c)
	go drain(filler)
	worst := make(chan time.Duration, 1)
	stop := time.Now().Add(3 * time.Second)
	go func() {
		var w time.Duration
		last := time.Now()
		for time.Now().Before(stop) {
			_ = a.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`))
			if _, _, err := a.ReadMessage(); err != nil {
				break
			}
			now := time.Now()
			w, last = max(w, now.Sub(last)), now
			time.Sleep(500 * time.Microsecond) // the probe's pace
		}
		worst <- w
	}()
	pad := strings.Repeat("x", 60<<10)
	for range 200 {
		_ = filler.WriteMessage(websocket.TextMessage, []byte(`{"type":"broadcast","data":"`+pad+`"}`))
	}
	b.ReportMetric(float64((<-worst).Microseconds())/1000, "worst-gap-ms")
}
