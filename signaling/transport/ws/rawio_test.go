//go:build linux

package ws

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/internal/wstest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// Frames written on senders' goroutines, and pings written on the ping
// timer's, have no deadline: none that the writer goroutine set for the
// welcome may cut the connection off once it has expired.
func TestWritesOnSendersGoroutinesOutliveWriteDeadlines(t *testing.T) {
	old := session.WriteWait
	session.WriteWait = 100 * time.Millisecond
	t.Cleanup(func() { session.WriteWait = old })
	srv, h := newBenchServer(t)
	// Pings within the run, at an interval a loaded machine's client
	// answers within: a peer that gives no sign of life for two is cut.
	h.PingInterval = 250 * time.Millisecond
	a, c, frame := wstest.JoinPair(t, srv, websocket.DefaultDialer)
	go drain(a)
	pings := countPings(c)
	start := time.Now()
	n := 0
	for time.Since(start) < 10*session.WriteWait || pings.Load() < 5 {
		if err := a.WriteMessage(websocket.TextMessage, frame); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatalf("after %d frames and %d pings in %v: %v", n, pings.Load(), time.Since(start), err)
		}
		n++
	}
}

// A frame the socket takes only part of at once is finished by the
// writer goroutine before anything else goes out: a peer that reads
// slowly gets every frame whole and in order.
func TestLeftoversOfWritesOnSendersGoroutinesArriveWhole(t *testing.T) {
	leftover := make(chan struct{})
	var once sync.Once
	testHookLeftover = func() { once.Do(func() { close(leftover) }) }
	t.Cleanup(func() { testHookLeftover = nil })
	// A send buffer smaller than a frame takes only part of it.
	var accepted []*net.TCPConn
	var mu sync.Mutex
	srv, _ := newBenchServerOn(t, func(l net.Listener) net.Listener {
		return smallSendBuffers{l, func(c *net.TCPConn) { mu.Lock(); accepted = append(accepted, c); mu.Unlock() }}
	})
	a, c, frame := wstest.JoinPair(t, srv, websocket.DefaultDialer)
	go drain(a)
	var signal struct{ To string }
	if err := json.Unmarshal(frame, &signal); err != nil {
		t.Fatal(err)
	}
	const frames = 64
	pad := strings.Repeat("x", 32<<10)
	sent := make(chan error, 1)
	go func() {
		for i := range frames {
			msg := `{"type":"signal","to":"` + signal.To + `","data":{"i":` + strconv.Itoa(i) + `,"p":"` + pad + `"}}`
			if err := a.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	// c reads nothing until a write was left over.
	select {
	case <-leftover:
	case <-time.After(10 * time.Second):
		t.Fatal("no write was left over")
	}
	// A ping from c now is answered while the rest of a frame waits:
	// the pong must not land inside it.
	pong := make(chan struct{}, 1)
	c.SetPongHandler(func(string) error {
		pong <- struct{}{}
		return nil
	})
	if err := c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	for _, conn := range accepted {
		_ = conn.SetWriteBuffer(4 << 20)
	}
	mu.Unlock()
	for i := range frames {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		var f struct {
			Data struct {
				I int    `json:"i"`
				P string `json:"p"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &f); err != nil || f.Data.I != i || f.Data.P != pad {
			t.Fatalf("frame %d: got index %d, %d bytes of padding, err %v: %.80s", i, f.Data.I, len(f.Data.P), err, b)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	select {
	case <-pong:
	default:
		t.Fatal("the ping sent while a frame was half written got no pong")
	}
}

// smallSendBuffers gives accepted connections a small send buffer and
// hands them to accepted.
type smallSendBuffers struct {
	net.Listener
	accepted func(*net.TCPConn)
}

func (l smallSendBuffers) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		err = conn.(*net.TCPConn).SetWriteBuffer(8192)
		l.accepted(conn.(*net.TCPConn))
	}
	return conn, err
}

// A peer that acknowledges the server's frames on frames of its own is
// not pinged for them; one that only listens is, within ackDelay.
func TestAcksOnPeerFramesSpareAckPings(t *testing.T) {
	old := ackDelay
	ackDelay = 300 * time.Millisecond
	t.Cleanup(func() { ackDelay = old })
	for _, acks := range []bool{true, false} {
		srv, h := newBenchServer(t)
		h.ResumeWindow = 30 * time.Second // frames are kept, and acknowledged
		a, c, frame := wstest.JoinPair(t, srv, websocket.DefaultDialer)
		go drain(a)
		pings := countPings(c)
		var lastSeq uint64
		for i := 0; i < 40; i++ { // 4 ackDelays of traffic both ways
			if err := a.WriteMessage(websocket.TextMessage, frame); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, b, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			var f struct{ Seq uint64 }
			if err := json.Unmarshal(b, &f); err != nil || f.Seq <= lastSeq {
				t.Fatalf("frame %s after seq %d", b, lastSeq)
			}
			lastSeq = f.Seq
			out := `{"type":"broadcast","data":{}}`
			if acks {
				out = `{"type":"broadcast","ack":` + strconv.FormatUint(lastSeq, 10) + `,"data":{}}`
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte(out)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(ackDelay / 10) // pacing: traffic spread over time, not a condition
		}
		switch n := pings.Load(); {
		case acks && n != 0:
			t.Errorf("a peer that acknowledged every frame got %d pings", n)
		case !acks && n == 0:
			t.Error("a peer that never acknowledged got no ping")
		}
	}
}

// An ack of a frame the server never sent is refused, and changes nothing.
func TestAckBeyondTheLastFrameIsRefused(t *testing.T) {
	a, c, _ := relayPair(t)
	go drain(a)
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"broadcast","ack":99,"data":{}}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var e wire.ErrorFrame
	if err := c.ReadJSON(&e); err != nil || e.Code != wire.CodeBadMessage || !strings.Contains(e.Message, "ack") {
		t.Fatalf("got %+v, %v; want a bad_message about the ack", e, err)
	}
}

// The idle time counts from the peer's last frame, with no read deadline
// on the socket (the event loop reads it): a peer that answers no ping
// stays as long as it sends frames, and is cut off once it has been
// silent for the idle time.
func TestIdleTimeFollowsThePeersLastFrame(t *testing.T) {
	srv, h := newBenchServer(t)
	// Pings well within writeWait's run, but an interval a loaded machine
	// answers within: a peer that gives no sign of life for two is cut.
	h.PingInterval = 100 * time.Millisecond
	idle := 2 * time.Duration(h.PingInterval)
	a, c, frame := wstest.JoinPair(t, srv, websocket.DefaultDialer)
	a.SetPingHandler(func(string) error { return nil }) // no pongs
	cut := make(chan time.Time, 1)
	pong := make(chan struct{}, 1)
	go func() {
		for {
			_, b, err := a.ReadMessage()
			if err != nil {
				cut <- time.Now()
				return
			}
			if strings.Contains(string(b), `"type":"pong"`) {
				pong <- struct{}{}
			}
		}
	}()
	go drain(c) // c answers pings, and stays
	start := time.Now()
	for time.Since(start) < 10*idle {
		select {
		case at := <-cut:
			t.Fatalf("a peer sending frames was cut off after %v", at.Sub(start))
		default:
		}
		if err := a.WriteMessage(websocket.TextMessage, frame); err != nil {
			t.Fatal(err)
		}
	}
	// The last frame: once its pong is back, the server has handled the
	// whole flood (on a loaded machine that may be well after the last
	// write), and the peer is silent from then on.
	if err := a.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pong:
	case <-time.After(30 * time.Second):
		t.Fatal("no pong to the last frame")
	}
	silent := time.Now()
	select {
	case at := <-cut:
		if at.Sub(silent) < idle/2 {
			t.Fatalf("cut off %v after its last frame; the idle time is %v", at.Sub(silent), idle)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a silent peer that answers no ping was not cut off")
	}
}
