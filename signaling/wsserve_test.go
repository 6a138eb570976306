package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// The WebSocket transport as a client sees it, through ServeHTTP over
// loopback with a memory hub: what a resume brings back, and in which order.

// testServer serves a handler of its own hub, named after the test (the
// sessions and the connections per address are counted per hub), changed
// by configure, unless nil, before it serves. It returns the server's
// WebSocket address.
func testServer(t *testing.T, configure func(*Handler)) (string, *Handler) {
	t.Helper()
	srv, h := newServerWith(t, nil, func(h *Handler) {
		h.Hub = "test:" + t.Name()
		h.metrics = newHubMetrics(h.Hub)
		if configure != nil {
			configure(h)
		}
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/", h
}

// withResume turns resume on, with a window no test waits out.
func withResume(h *Handler) {
	window := caddy.Duration(time.Minute)
	h.ResumeWindow = &window
}

// testFrame is what a test reads of a server's frame.
type testFrame struct {
	Seq     uint64          `json:"seq"`
	Type    string          `json:"type"`
	Code    string          `json:"code"`
	ID      string          `json:"id"`
	From    string          `json:"from"`
	Data    json.RawMessage `json:"data"`
	Resume  string          `json:"resume"`
	Resumed bool            `json:"resumed"`
}

// dialWS connects to base with query, and closes the connection when the
// test ends.
func dialWS(t *testing.T, base, query string, header http.Header) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(base+"?"+query, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial ?%s: %v (status %d)", query, err, status)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// readMessage reads the next message of ws, within 10 seconds.
func readMessage(t *testing.T, ws *websocket.Conn) []byte {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return b
}

// nextFrame reads the next frame of ws, within 10 seconds.
func nextFrame(t *testing.T, ws *websocket.Conn) testFrame {
	t.Helper()
	b := readMessage(t, ws)
	var f testFrame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame %q: %v", b, err)
	}
	return f
}

// closeCode reads ws until the server closes it, and returns the close
// code; a frame before the close fails the test.
func closeCode(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	var ce *websocket.CloseError
	switch {
	case err == nil:
		t.Fatalf("a frame where the close was due: %s", b)
	case !errors.As(err, &ce):
		t.Fatalf("no close frame: %v", err)
	}
	return ce.Code
}

// join connects a peer to room and returns it with its welcome.
func join(t *testing.T, base, room string) (*websocket.Conn, testFrame) {
	t.Helper()
	ws := dialWS(t, base, "room="+url.QueryEscape(room), nil)
	w := nextFrame(t, ws)
	if w.Type != wire.TypeWelcome || w.ID == "" {
		t.Fatalf("first frame %+v, want a welcome", w)
	}
	return ws, w
}

// sendSignal sends a signal to peer to carrying n.
func sendSignal(t *testing.T, ws *websocket.Conn, to string, n int) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"signal","to":%q,"data":{"n":%d}}`, to, n)); err != nil {
		t.Fatal(err)
	}
}

// signalN is the n a signal of sendSignal carries.
func signalN(t *testing.T, f testFrame) int {
	t.Helper()
	var d struct{ N int }
	if f.Type != wire.TypeSignal || json.Unmarshal(f.Data, &d) != nil {
		t.Fatalf("frame %+v, want a signal", f)
	}
	return d.N
}

// expectSignals reads the signals from from carrying want, in that order,
// numbered one after the other.
func expectSignals(t *testing.T, ws *websocket.Conn, from string, want ...int) (lastSeq uint64) {
	t.Helper()
	for _, n := range want {
		f := nextFrame(t, ws)
		if got := signalN(t, f); got != n || f.From != from {
			t.Fatalf("signal %d from %s, want %d from %s", got, f.From, n, from)
		}
		if lastSeq != 0 && f.Seq != lastSeq+1 {
			t.Fatalf("signal %d has seq %d after %d", n, f.Seq, lastSeq)
		}
		lastSeq = f.Seq
	}
	return lastSeq
}

// A client that lost its connection resumes its session with the token
// of its welcome and the last seq it processed: the session keeps its id,
// the welcome says resumed, and exactly the frames after last_seq follow,
// in order, those sent while it was away included. The room saw nothing
// of it. The token worked once: presented again, it joins afresh.
func TestResumeReattachesTheSessionAndReplaysWhatFollowsLastSeq(t *testing.T) {
	base, _ := testServer(t, withResume)
	a, aw := join(t, base, "resume")
	b, bw := join(t, base, "resume")
	if f := nextFrame(t, a); f.Type != wire.TypePeerJoined || f.ID != bw.ID {
		t.Fatalf("a got %+v, want b's peer-joined", f)
	}
	for n := 1; n <= 3; n++ {
		sendSignal(t, b, aw.ID, n)
	}
	first := expectSignals(t, a, bw.ID, 1)
	expectSignals(t, a, bw.ID, 2, 3)
	_ = a.NetConn().Close() // lost, without a goodbye
	for n := 4; n <= 5; n++ {
		sendSignal(t, b, aw.ID, n)
	}

	a2 := dialWS(t, base, fmt.Sprintf("room=resume&resume=%s&last_seq=%d", url.QueryEscape(aw.Resume), first), nil)
	w := nextFrame(t, a2)
	if w.Type != wire.TypeWelcome || !w.Resumed || w.ID != aw.ID || w.Resume == "" || w.Resume == aw.Resume {
		t.Fatalf("answer to the resume %+v, want a resumed welcome for %s with a new token", w, aw.ID)
	}
	if f := nextFrame(t, a2); signalN(t, f) != 2 || f.Seq != first+1 {
		t.Fatalf("first replayed frame %+v, want signal 2 with seq %d", f, first+1)
	}
	expectSignals(t, a2, bw.ID, 3, 4, 5)

	// b saw no peer-left nor peer-joined: its next frame is a's.
	sendSignal(t, a2, bw.ID, 6)
	if f := nextFrame(t, b); f.From != aw.ID || signalN(t, f) != 6 {
		t.Fatalf("b got %+v, want a's signal 6", f)
	}

	// The token is spent.
	a3 := dialWS(t, base, "room=resume&resume="+url.QueryEscape(aw.Resume)+"&last_seq=0", nil)
	if f := nextFrame(t, a3); f.Type != wire.TypeError || f.Code != wire.CodeResumeFailed {
		t.Fatalf("a spent token got %+v, want resume_failed", f)
	}
	if w := nextFrame(t, a3); w.Type != wire.TypeWelcome || w.Resumed || w.ID == aw.ID {
		t.Fatalf("after resume_failed %+v, want a fresh welcome with a new id", w)
	}
}

// A resume with a token no session has says resume_failed, not fatal,
// then joins the room afresh on the same connection: a fresh welcome, and
// the room is told of a new peer.
func TestResumeWithAnUnknownTokenJoinsAfresh(t *testing.T) {
	base, _ := testServer(t, withResume)
	b, _ := join(t, base, "fresh")
	for _, token := range []string{"garbage", session.Token("test:"+t.Name(), "fresh", session.NewPeerID(), 0)} {
		ws := dialWS(t, base, "room=fresh&last_seq=0&resume="+url.QueryEscape(token), nil)
		if f := nextFrame(t, ws); f.Type != wire.TypeError || f.Code != wire.CodeResumeFailed {
			t.Fatalf("token %q: first frame %+v, want resume_failed", token, f)
		}
		w := nextFrame(t, ws)
		if w.Type != wire.TypeWelcome || w.Resumed || w.ID == "" || w.Resume == "" {
			t.Fatalf("token %q: after resume_failed %+v, want a fresh welcome", token, w)
		}
		if f := nextFrame(t, b); f.Type != wire.TypePeerJoined || f.ID != w.ID {
			t.Fatalf("token %q: the room got %+v, want peer-joined %s", token, f, w.ID)
		}
	}
}
