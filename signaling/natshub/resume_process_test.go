package natshub

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyproc"
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
	srv := startNATS(t)
	a, b := twoCaddies(t, srv.URL(), 0)
	x := join(t, a, "standup")
	idX := x.id
	y, err := dialRaw(t, b, "standup")
	if err != nil {
		t.Fatal(err)
	}
	w := readSeq(t, y)
	if w.Type != "welcome" || w.Seq != 1 || w.Resume == "" {
		t.Fatalf("welcome %+v", w)
	}
	x.expect("peer-joined")
	const n = 40
	for i := range n {
		x.signal(w.ID, i)
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

	u := fmt.Sprintf("%s&resume=%s&last_seq=%d", wsURL(a, "standup"), url.QueryEscape(w.Resume), last)
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
		_ = y2.WriteJSON(map[string]any{"seq": i, "type": "signal", "to": idX, "data": fmt.Sprintf("y%d", i)})
	}
	_ = y2.WriteJSON(map[string]any{"seq": 4, "type": "signal", "to": idX, "data": "y4"})
	for got < n {
		next(y2)
	}
	for i := 1; i <= 4; i++ {
		f := x.expect("signal")
		var d string
		_ = json.Unmarshal(f.Data, &d)
		if f.From != w.ID || d != fmt.Sprintf("y%d", i) {
			t.Fatalf("x got %+v, want y%d", f, i)
		}
	}
	// Both directions go on through A to the session on B.
	x.signal(w.ID, n)
	next(y2)
	// Leaving through the front leaves the room at once.
	_ = y2.WriteJSON(map[string]any{"type": "leave"})
	x.expectFrom("peer-left", w.ID)
}

// sseStream reads the events of an SSE stream.
type sseStream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

func openEvents(t *testing.T, u string) *sseStream {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET %s: %s %s", u, resp.Status, resp.Header.Get("Content-Type"))
	}
	return &sseStream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event's id and frame, skipping comments.
func (s *sseStream) next() (string, seqFrame) {
	s.t.Helper()
	var id string
	var data []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("reading the stream: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "" && len(data) > 0:
			var f seqFrame
			if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &f); err != nil {
				s.t.Fatalf("event %q: %v", data, err)
			}
			return id, f
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[6:])
		}
	}
}

// post sends a frame for the session token names through p.
func post(t *testing.T, p *caddyproc.Proc, token, frame string) (int, string) {
	t.Helper()
	u := fmt.Sprintf("http://%s/ws/send?session=%s", p.Addr(), url.QueryEscape(token))
	resp, err := http.Post(u, "text/plain", strings.NewReader(frame))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// An SSE peer of Caddy B whose POSTs reach Caddy A (no sticky sessions)
// is answered as by B, and its stream, cut, resumes on A.
func TestSSEAcrossCaddies(t *testing.T) {
	srv := startNATS(t)
	a, b := twoCaddies(t, srv.URL(), 0)
	x := join(t, a, "standup")
	y := openEvents(t, fmt.Sprintf("http://%s/ws/events?room=standup", b.Addr()))
	_, w := y.next()
	if w.Type != "welcome" || w.Seq != 1 {
		t.Fatalf("welcome %+v", w)
	}
	x.expect("peer-joined")
	for i := 1; i <= 3; i++ {
		if st, body := post(t, a, w.Resume, fmt.Sprintf(`{"seq":%d,"type":"signal","to":%q,"data":%d}`, i, x.id, i)); st != http.StatusNoContent {
			t.Fatalf("POST through A: %d %s", st, body)
		}
	}
	for i := 1; i <= 3; i++ {
		if f := x.expect("signal"); f.From != w.ID || string(f.Data) != fmt.Sprint(i) {
			t.Fatalf("x got %+v, want %d", f, i)
		}
	}
	if st, body := post(t, a, w.Resume, `{"type":`); st != http.StatusBadRequest || !strings.Contains(body, "bad_message") {
		t.Fatalf("bad frame through A: %d %s", st, body)
	}
	if st, body := post(t, a, w.ID+".0.AAAAAAAAAAAAAAAAAAAAAA", `{"type":"ping"}`); st != http.StatusNotFound || !strings.Contains(body, "unknown_session") {
		t.Fatalf("forged token through A: %d %s", st, body)
	}
	// The stream is cut; x signals meanwhile; y resumes on A.
	y.resp.Body.Close()
	for i := 10; i < 15; i++ {
		x.signal(w.ID, i)
	}
	y2 := openEvents(t, fmt.Sprintf("http://%s/ws/events?room=standup&resume=%s&last_seq=1", a.Addr(), url.QueryEscape(w.Resume)))
	_, rw := y2.next()
	if rw.Type != "welcome" || !rw.Resumed || rw.ID != w.ID || rw.Ack == nil || *rw.Ack != 3 {
		t.Fatalf("resumed welcome %+v", rw)
	}
	for i, seq := 10, uint64(2); i < 15; i, seq = i+1, seq+1 {
		id, f := y2.next()
		if f.Type != "signal" || string(f.Data) != fmt.Sprint(i) || f.Seq != seq || id != fmt.Sprint(seq) {
			t.Fatalf("event %s %+v, want signal %d with seq %d", id, f, i, seq)
		}
	}
	// The new token works from either server; the old one no longer.
	if st, _ := post(t, b, rw.Resume, fmt.Sprintf(`{"seq":4,"type":"signal","to":%q,"data":4}`, x.id)); st != http.StatusNoContent {
		t.Fatalf("POST with the new token: %d", st)
	}
	if f := x.expect("signal"); string(f.Data) != "4" {
		t.Fatalf("x got %+v", f)
	}
	if st, _ := post(t, a, w.Resume, `{"type":"ping"}`); st != http.StatusNotFound {
		t.Fatalf("old token: %d", st)
	}
}
