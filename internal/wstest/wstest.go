// Package wstest is what tests of the signaling code do as WebSocket
// clients: dial, join a room, read frames, send and expect signals. The
// Caddy face's tests and the WebSocket transport's share it.
package wstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
	"github.com/gorilla/websocket"
)

// Frame is what a test reads of a server's frame.
type Frame struct {
	Seq     uint64          `json:"seq"`
	Type    string          `json:"type"`
	Code    string          `json:"code"`
	ID      string          `json:"id"`
	From    string          `json:"from"`
	Data    json.RawMessage `json:"data"`
	Resume  string          `json:"resume"`
	Resumed bool            `json:"resumed"`
}

// Dial connects to base with query, and closes the connection when the
// test ends.
func Dial(t testing.TB, base, query string, header http.Header) *websocket.Conn {
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

// ReadMessage reads the next message of ws, within 10 seconds.
func ReadMessage(t testing.TB, ws *websocket.Conn) []byte {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return b
}

// NextFrame reads the next frame of ws, within 10 seconds.
func NextFrame(t testing.TB, ws *websocket.Conn) Frame {
	t.Helper()
	b := ReadMessage(t, ws)
	var f Frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame %q: %v", b, err)
	}
	return f
}

// CloseCode reads ws until the server closes it, and returns the close
// code; a frame before the close fails the test.
func CloseCode(t testing.TB, ws *websocket.Conn) int {
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

// Join connects a peer to room and returns it with its welcome.
func Join(t testing.TB, base, room string) (*websocket.Conn, Frame) {
	t.Helper()
	ws := Dial(t, base, "room="+url.QueryEscape(room), nil)
	w := NextFrame(t, ws)
	if w.Type != wire.TypeWelcome || w.ID == "" {
		t.Fatalf("first frame %+v, want a welcome", w)
	}
	return ws, w
}

// SendSignal sends a signal to peer to carrying n.
func SendSignal(t testing.TB, ws *websocket.Conn, to string, n int) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"signal","to":%q,"data":{"n":%d}}`, to, n)); err != nil {
		t.Fatal(err)
	}
}

// SignalN is the n a signal of SendSignal carries.
func SignalN(t testing.TB, f Frame) int {
	t.Helper()
	var d struct{ N int }
	if f.Type != wire.TypeSignal || json.Unmarshal(f.Data, &d) != nil {
		t.Fatalf("frame %+v, want a signal", f)
	}
	return d.N
}

// ExpectSignals reads the signals from from carrying want, in that order,
// numbered one after the other.
func ExpectSignals(t testing.TB, ws *websocket.Conn, from string, want ...int) (lastSeq uint64) {
	t.Helper()
	for _, n := range want {
		f := NextFrame(t, ws)
		if got := SignalN(t, f); got != n || f.From != from {
			t.Fatalf("signal %d from %s, want %d from %s", got, f.From, n, from)
		}
		if lastSeq != 0 && f.Seq != lastSeq+1 {
			t.Fatalf("signal %d has seq %d after %d", n, f.Seq, lastSeq)
		}
		lastSeq = f.Seq
	}
	return lastSeq
}

// JoinPair joins two peers to one room of srv, the second dialed with
// dialer, and returns them and a frame from the first to the second.
func JoinPair(b testing.TB, srv *httptest.Server, dialer *websocket.Dialer) (a, c *websocket.Conn, frame []byte) {
	return JoinRoomPair(b, srv, "relay", dialer)
}

// JoinRoomPair is JoinPair in the room named room.
func JoinRoomPair(b testing.TB, srv *httptest.Server, room string, dialer *websocket.Dialer) (a, c *websocket.Conn, frame []byte) {
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/?room=" + room
	a, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := a.ReadMessage(); err != nil { // a's welcome: a is in
		b.Fatal(err)
	}
	c, _, err = dialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	var welcome wire.Welcome
	if err := c.ReadJSON(&welcome); err != nil {
		b.Fatal(err)
	}
	if _, _, err := a.ReadMessage(); err != nil { // peer-joined c
		b.Fatal(err)
	}
	frame = []byte(`{"type":"signal","to":"` + welcome.ID + `","data":{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}}`)
	b.Cleanup(func() { a.Close(); c.Close() })
	return a, c, frame
}
