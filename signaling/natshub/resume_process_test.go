package natshub

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// seqFrame is a server frame with its sequence number.
type seqFrame struct {
	wireFrame
	Seq     uint64  `json:"seq"`
	Resumed bool    `json:"resumed"`
	Ack     *uint64 `json:"ack"`
	Resume  string  `json:"resume"`
}

func readSeq(t *testing.T, c *websocket.Conn) seqFrame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f seqFrame
	if err := c.ReadJSON(&f); err != nil {
		t.Fatalf("reading: %v", err)
	}
	return f
}

// A peer of Caddy B whose connection is cut resumes on Caddy A (a load
// balancer does not send it back): same id, every frame once and in
// order both ways, and its room-mate on A never sees it leave.
func TestResumeOnAnotherCaddy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy")
	}
	bin := buildCaddy(t)
	srv := startNATS(t)
	a, b := startCaddy(t, bin, srv.url()), startCaddy(t, bin, srv.url())
	x := dialRoom(t, a.port)
	idX := expectFrame(t, x, "welcome").ID
	y := dialRoom(t, b.port)
	w := readSeq(t, y)
	if w.Type != "welcome" || w.Seq != 1 || w.Resume == "" {
		t.Fatalf("welcome %+v", w)
	}
	expectFrame(t, x, "peer-joined")
	const n = 40
	for i := range n {
		send(t, x, map[string]any{"type": "signal", "to": w.ID, "data": i})
	}
	last := w.Seq
	got := 0
	next := func(c *websocket.Conn) {
		f := readSeq(t, c)
		if f.Seq != last+1 || f.Type != "signal" || string(f.Data) != fmt.Sprint(got) {
			t.Fatalf("frame %+v, want seq %d carrying %d", f, last+1, got)
		}
		last, got = f.Seq, got+1
	}
	for got < n/2 {
		next(y)
	}
	// y sends three numbered signals; the connection dies under them.
	for i := 1; i <= 3; i++ {
		_ = y.WriteJSON(map[string]any{"seq": i, "type": "signal", "to": idX, "data": fmt.Sprintf("y%d", i)})
	}
	y.UnderlyingConn().Close()

	u := fmt.Sprintf("ws://127.0.0.1:%d/ws?room=standup&resume=%s&last_seq=%d", a.port, url.QueryEscape(w.Resume), last)
	y2, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { y2.Close() })
	rw := readSeq(t, y2)
	if rw.Type != "welcome" || !rw.Resumed || rw.ID != w.ID || rw.Seq != 0 || rw.Ack == nil {
		t.Fatalf("resumed welcome %+v", rw)
	}
	for i := int(*rw.Ack) + 1; i <= 3; i++ {
		send(t, y2, map[string]any{"seq": i, "type": "signal", "to": idX, "data": fmt.Sprintf("y%d", i)})
	}
	send(t, y2, map[string]any{"seq": 4, "type": "signal", "to": idX, "data": "y4"})
	for got < n {
		next(y2)
	}
	for i := 1; i <= 4; i++ {
		f := expectFrame(t, x, "signal")
		var d string
		_ = json.Unmarshal(f.Data, &d)
		if f.From != w.ID || d != fmt.Sprintf("y%d", i) {
			t.Fatalf("x got %+v, want y%d", f, i)
		}
	}
	// Both directions go on through A to the session on B.
	send(t, x, map[string]any{"type": "signal", "to": w.ID, "data": n})
	next(y2)
	// Leaving through the front leaves the room at once.
	send(t, y2, map[string]any{"type": "leave"})
	if f := expectFrame(t, x, "peer-left"); f.ID != w.ID {
		t.Fatalf("peer-left %+v", f)
	}
}
