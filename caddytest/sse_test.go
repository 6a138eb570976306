package caddytest

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/gorilla/websocket"
	"github.com/quic-go/quic-go/http3"
)

// sseBase is signalingSite's WebSocket route as the SSE transport's base:
// <base>/events and <base>/send.
const sseBase = "http://localhost:9080/rtc/ws"

// sseSignal is the data of the numbered signals the tests relay.
type sseSignal struct {
	N   int    `json:"n"`
	SDP string `json:"sdp"`
}

// expectSignals reads n signals from peer from, numbered first, first+1, ...
func expectSignals(t *testing.T, next func() (string, json.RawMessage), from string, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		sender, data := next()
		var d sseSignal
		if err := json.Unmarshal(data, &d); err != nil || sender != from || d.N != i || d.SDP != "v=0\r\n" {
			t.Fatalf("signal %d: from %q data %s (%v)", i, sender, data, err)
		}
	}
}

func sseSignals(c *sseClient) func() (string, json.RawMessage) {
	return func() (string, json.RawMessage) {
		c.t.Helper()
		f := c.expect("signal")
		return f.From, f.Data
	}
}

func wsSignals(c *wsClient) func() (string, json.RawMessage) {
	return func() (string, json.RawMessage) {
		c.t.Helper()
		f := c.expect("signal")
		return f.From, f.Data
	}
}

// A peer on SSE and a peer on a WebSocket share a room: membership,
// signals both ways in order, broadcast, keep-alive, and leave.
func TestSSEAndWebSocketShareARoom(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	ws, _ := join(t, roomURL+"mixed")
	s, w := joinSSE(t, sseBase, "room=mixed")
	if w.Seq != 1 || w.eventID != "1" || w.Room != "mixed" || len(w.Peers) != 1 || w.Peers[0].ID != ws.id || w.Resume == "" || s.id == ws.id {
		t.Fatalf("SSE welcome %+v", w)
	}
	if f := ws.expect("peer-joined"); f.ID != s.id {
		t.Fatalf("peer-joined %q, want %q", f.ID, s.id)
	}

	const n = 100
	for i := range n {
		ws.signal(s.id, sseSignal{N: i, SDP: "v=0\r\n"})
		s.signal(ws.id, sseSignal{N: i, SDP: "v=0\r\n"})
	}
	expectSignals(t, sseSignals(s), ws.id, 0, n)
	expectSignals(t, wsSignals(ws), s.id, 0, n)

	// Relayed data with raw line breaks between its tokens arrives whole.
	ws.sendRaw(websocket.TextMessage, []byte("{\"type\":\"signal\",\"to\":\""+s.id+"\",\"data\":{\n \"n\": 7,\r\n\"sdp\":\r\"v=0\\r\\n\"\n}}"))
	expectSignals(t, sseSignals(s), ws.id, 7, 1)

	s.send(map[string]any{"type": "broadcast", "data": map[string]string{"chat": "hi"}})
	if f := ws.expect("broadcast"); f.From != s.id || string(f.Data) != `{"chat":"hi"}` {
		t.Fatalf("broadcast: %+v", f)
	}
	s.roundTrip() // the sender got no copy of its broadcast
	ws.roundTrip()

	// An idle stream gets keep-alive comments (ping_interval 2s).
	eventually(t, 10*time.Second, "a keep-alive comment", func() bool { return s.pings.Load() > 0 })

	// leave: the others are told at once, the stream ends, and the token
	// names nothing any more.
	s.send(map[string]string{"type": "leave"})
	if f := ws.expect("peer-left"); f.ID != s.id {
		t.Fatalf("peer-left %q, want %q", f.ID, s.id)
	}
	s.expectEnd()
	if status, f := s.post([]byte(`{"type":"ping"}`)); status != http.StatusNotFound || f.Code != "unknown_session" {
		t.Fatalf("POST after leave: %d %+v, want 404 unknown_session", status, f)
	}
	ws.roundTrip()
}

// A refused stream is a 200 stream whose only event is the error frame.
func TestSSERefusedWithOneErrorEvent(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	var members []*wsClient
	for range 6 {
		c, _ := join(t, roomURL+"sse-full")
		for _, m := range members {
			m.expect("peer-joined")
		}
		members = append(members, c)
	}
	for _, tc := range []struct{ name, query, origin, code string }{
		{"room full", "room=sse-full", "", "room_full"},
		{"no room", "", "", "missing_room"},
		{"invalid room", "room=%01", "", "invalid_room"},
		{"foreign origin", "room=sse-origin", "https://evil.example", "forbidden_origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSSEClient(t, nil, sseBase, tc.query)
			c.origin = tc.origin
			if err := c.open(""); err != nil {
				t.Fatal(err)
			}
			if f := c.expectError(tc.code); f.eventID != "" || f.Seq != 0 {
				t.Fatalf("refusal %+v has an id", f)
			}
			c.expectEnd()
		})
	}
	// Nobody in the room noticed.
	for _, m := range members {
		m.roundTrip()
	}
}

// POSTed frames are answered with the status of their problem and the
// error frame as the body; problems that are not the frame's go on the
// stream, as on a WebSocket.
func TestSSESendErrors(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	bystander, _ := join(t, roomURL+"sse-errors")
	s, _ := joinSSE(t, sseBase, "room=sse-errors")
	bystander.expect("peer-joined")

	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"not json", "hello", 400, "bad_message"},
		{"no type", `{"to":"x"}`, 400, "bad_message"},
		{"unknown type", `{"type":"offer"}`, 400, "bad_message"},
		{"signal without to", `{"type":"signal","data":1}`, 400, "bad_message"},
		{"invalid utf-8", "{\"type\":\"broadcast\",\"data\":\"\xff\"}", 400, "bad_message"},
	} {
		if status, f := s.post([]byte(tc.body)); status != tc.status || f.Code != tc.code {
			t.Fatalf("%s: %d %+v, want %d %s", tc.name, status, f, tc.status, tc.code)
		}
	}
	s.roundTrip() // none of them went on the stream too

	// An unknown addressee is not a problem of the frame: 204, and the
	// error on the stream.
	if status, f := s.post([]byte(`{"type":"signal","to":"nobody","data":1}`)); status != http.StatusNoContent {
		t.Fatalf("signal to nobody: %d %+v, want 204", status, f)
	}
	s.expectError("unknown_peer")

	// Unknown sessions, a foreign origin, and other methods.
	for _, token := range []string{"", "garbage", "a.0.AAAA", s.token + "x"} {
		if status, f := s.postAs(token, []byte(`{"type":"ping"}`)); status != http.StatusNotFound || f.Code != "unknown_session" {
			t.Fatalf("token %q: %d %+v, want 404 unknown_session", token, status, f)
		}
	}
	s.origin = "https://evil.example"
	if status, f := s.post([]byte(`{"type":"ping"}`)); status != http.StatusForbidden || f.Code != "forbidden_origin" {
		t.Fatalf("foreign origin: %d %+v, want 403 forbidden_origin", status, f)
	}
	s.origin = ""
	resp, err := http.Get(sseBase + "/send?session=" + s.token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET /send: %s, Allow %q", resp.Status, resp.Header.Get("Allow"))
	}
	resp, err = http.Post(sseBase+"/events?room=sse-errors", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
		t.Fatalf("POST /events: %s, Allow %q", resp.Status, resp.Header.Get("Allow"))
	}
	s.roundTrip()
	bystander.roundTrip()

	// Too large (max_message_size 4KiB) ends the session, as on a
	// WebSocket: the stream says why and ends, the others see peer-left.
	big := `{"type":"broadcast","data":"` + strings.Repeat("x", 5000) + `"}`
	if status, f := s.post([]byte(big)); status != http.StatusRequestEntityTooLarge || f.Code != "too_large" {
		t.Fatalf("too large: %d %+v, want 413 too_large", status, f)
	}
	s.expectError("too_large")
	s.expectEnd()
	if f := bystander.expect("peer-left"); f.ID != s.id {
		t.Fatalf("peer-left %q, want %q", f.ID, s.id)
	}
	if status, f := s.post([]byte(`{"type":"ping"}`)); status != http.StatusNotFound {
		t.Fatalf("POST after the session ended: %d %+v, want 404", status, f)
	}
	bystander.roundTrip()
}

// The frame rate and connections_per_ip limits hold on SSE too.
func TestSSELimits(t *testing.T) {
	loadCaddyfile(t, limitsSite, false)
	emptyHub(t, "limits")
	emptyHub(t, "conns")
	s, _ := joinSSE(t, sseBase, "room=sse-rate")
	// frames_per_second 5, burst 10: a burst past the bucket is refused
	// frame by frame with 429.
	pongs, limited := 0, 0
	for range 14 {
		switch status, f := s.post([]byte(`{"type":"ping"}`)); {
		case status == http.StatusNoContent:
			pongs++
		case status == http.StatusTooManyRequests && f.Code == "rate_limited":
			limited++
		default:
			t.Fatalf("POST: %d %+v", status, f)
		}
	}
	if pongs < 10 || limited == 0 {
		t.Fatalf("%d taken, %d rate_limited; want the burst of 10 taken and the rest limited", pongs, limited)
	}
	for range pongs {
		s.expect("pong")
	}

	// connections_per_ip 2 (hub conns): a third stream is answered 429.
	const connBase = "http://localhost:9080/conn/ws"
	joinSSE(t, connBase, "room=c")
	joinSSE(t, connBase, "room=c")
	resp, err := http.Get(connBase + "/events?room=c")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "too many signaling connections") {
		t.Fatalf("third stream: %s %q, want 429", resp.Status, body)
	}
}

// A stream that drops leaves its session away; reopened with resume and
// last_seq, it continues where it was: same id, the frames sent meanwhile
// once and in order, and the others saw nothing.
func TestSSEResume(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	ws, _ := join(t, roomURL+"sse-resume")
	s, _ := joinSSE(t, sseBase, "room=sse-resume")
	ws.expect("peer-joined")
	for i := range 5 {
		ws.signal(s.id, sseSignal{N: i, SDP: "v=0\r\n"})
	}
	expectSignals(t, sseSignals(s), ws.id, 0, 5)

	s.drop()
	const missed = 30
	for i := range missed {
		ws.signal(s.id, sseSignal{N: 5 + i, SDP: "v=0\r\n"})
	}
	// The peer's frames, numbered, go on while its stream is down.
	for i := range 3 {
		s.send(map[string]any{"seq": i + 1, "type": "signal", "to": ws.id, "data": sseSignal{N: i, SDP: "v=0\r\n"}})
	}
	expectSignals(t, wsSignals(ws), s.id, 0, 3)

	oldToken, id, last := s.token, s.id, s.lastSeq
	if err := s.resume(); err != nil {
		t.Fatal(err)
	}
	w := s.expectWelcome()
	if !w.Resumed || w.ID != id || w.Seq != 0 || w.eventID != "" || w.Ack == nil || *w.Ack != 3 || w.Resume == oldToken || len(w.Peers) != 1 || w.Peers[0].ID != ws.id {
		t.Fatalf("resumed welcome %+v (ack %v), want resumed, id %s, ack 3, a new token, peers [%s]", w, w.Ack, id, ws.id)
	}
	// readFor checks that seqs continue at last+1 without a gap.
	expectSignals(t, sseSignals(s), ws.id, 5, missed)
	if s.lastSeq != last+missed {
		t.Fatalf("last seq %d, want %d", s.lastSeq, last+missed)
	}
	s.roundTrip()  // nothing came twice
	ws.roundTrip() // the WebSocket peer saw no peer-left

	// The old token names nothing; a resend of a frame processed already
	// is taken (204) and dropped.
	if status, f := s.postAs(oldToken, []byte(`{"type":"ping"}`)); status != http.StatusNotFound {
		t.Fatalf("old token: %d %+v, want 404", status, f)
	}
	s.send(map[string]any{"seq": 3, "type": "signal", "to": ws.id, "data": "again"})
	ws.roundTrip()

	// A resume that cannot be: resume_failed, then a fresh session.
	c := newSSEClient(t, nil, sseBase, "room=sse-resume")
	if err := c.open("&resume=" + oldToken + "&last_seq=0"); err != nil {
		t.Fatal(err)
	}
	c.expectError("resume_failed")
	if w := c.expectWelcome(); w.Resumed || w.Seq != 1 || w.ID == id || len(w.Peers) != 2 {
		t.Fatalf("welcome after resume_failed: %+v", w)
	}
	ws.expect("peer-joined")
	s.expect("peer-joined")
}

// A resume on a second stream while the first is still open (a half-open
// connection) takes over: the old stream is told replaced and ends.
func TestSSEResumeReplacesOpenStream(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	s, _ := joinSSE(t, sseBase, "room=sse-replace")
	second := newSSEClient(t, nil, sseBase, "room=sse-replace")
	second.token, second.lastSeq = s.token, s.lastSeq
	if err := second.open(fmt.Sprintf("&resume=%s&last_seq=%d", s.token, s.lastSeq)); err != nil {
		t.Fatal(err)
	}
	if w := second.expectWelcome(); !w.Resumed || w.ID != s.id {
		t.Fatalf("resume over an open stream: %+v", w)
	}
	s.expectError("replaced")
	s.expectEnd()
	second.roundTrip()
}

// SSE works over HTTP/2 (an HTTPS site), stream and POSTs on one
// connection, with a WebSocket peer in the same room.
func TestSSEOverHTTP2(t *testing.T) {
	tlsConf := loadHTTPSSite(t)
	testSSEOverHTTPS(t, &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}}, tlsConf, 2)
}

// And over HTTP/3, which Caddy serves on the HTTPS site's UDP port.
func TestSSEOverHTTP3(t *testing.T) {
	tlsConf := loadHTTPSSite(t)
	tr := &http3.Transport{TLSClientConfig: tlsConf}
	t.Cleanup(func() { tr.Close() })
	testSSEOverHTTPS(t, &http.Client{Transport: tr}, tlsConf, 3)
}

// testSSEOverHTTPS relays signals both ways between an SSE peer whose
// stream and POSTs go over HTTP/proto and a WebSocket peer.
func testSSEOverHTTPS(t *testing.T, client *http.Client, tlsConf *tls.Config, proto int) {
	const origin = "https://localhost:9443"
	d := websocket.Dialer{TLSClientConfig: tlsConf}
	room := fmt.Sprintf("h%d", proto)
	conn, resp, err := d.Dial("wss://localhost:9443/rtc/ws?room="+room, http.Header{"Origin": {origin}})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	resp.Body.Close()
	ws := &wsClient{t: t, conn: conn}
	t.Cleanup(ws.leave)
	ws.id = ws.expect("welcome").ID

	s := newSSEClient(t, client, origin+"/rtc/ws", "room="+room)
	s.origin = origin
	if err := s.open(""); err != nil {
		t.Fatal(err)
	}
	s.expectWelcome()
	if s.resp.ProtoMajor != proto {
		t.Fatalf("stream over %s, want HTTP/%d", s.resp.Proto, proto)
	}
	// A page of an allowed origin may read the stream (CORS).
	if got := s.resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Fatalf("Access-Control-Allow-Origin %q, want %q", got, origin)
	}
	ws.expect("peer-joined")
	const n = 50
	for i := range n {
		ws.signal(s.id, sseSignal{N: i, SDP: "v=0\r\n"})
		s.signal(ws.id, sseSignal{N: i, SDP: "v=0\r\n"})
	}
	if s.postProto != proto {
		t.Fatalf("POST over HTTP/%d, want %d", s.postProto, proto)
	}
	expectSignals(t, sseSignals(s), ws.id, 0, n)
	expectSignals(t, wsSignals(ws), s.id, 0, n)

	// The server sees a stream the client drops (a reset stream), and the
	// session resumes on a new one.
	const away = `caddy_webrtc_signaling_away_peers{hub="default"}`
	before := scrapeMetrics(t)
	s.drop()
	expectMetrics(t, before, nil, map[string]float64{away: before[away] + 1})
	ws.signal(s.id, sseSignal{N: n, SDP: "v=0\r\n"})
	if err := s.resume(); err != nil {
		t.Fatal(err)
	}
	if w := s.expectWelcome(); !w.Resumed {
		t.Fatalf("welcome after the drop: %+v", w)
	}
	expectSignals(t, sseSignals(s), ws.id, n, 1)
	expectMetrics(t, before, nil, map[string]float64{away: before[away]})

	s.send(map[string]string{"type": "leave"})
	ws.expect("peer-left")
	s.expectEnd()
}

// Behind Caddy's encode the stream is compressed, and every batch of
// events still arrives at once: the flush goes through the encoder.
func TestSSEThroughEncode(t *testing.T) {
	loadCaddyfile(t, strings.Replace(signalingSite, "\thandle /rtc/* {", "\tencode gzip\n\thandle /rtc/* {", 1), false)
	s := newSSEClient(t, nil, sseBase, "room=sse-encode")
	if err := s.open(""); err != nil {
		t.Fatal(err)
	}
	if !s.resp.Uncompressed { // Go's client asked for gzip and decompressed it
		t.Fatal("the stream was not compressed: encode is not in front of it")
	}
	s.expectWelcome()
	s.roundTrip()
	s.roundTrip()
}

// A stream whose client reads nothing is dropped like a WebSocket that
// does: its stuck write is cut short, and the others see it leave.
func TestSSESlowReaderIsDisconnected(t *testing.T) {
	loadCaddyfile(t, slowReaderSite, false)
	url := "ws://localhost:9080/?room=sse-slow"
	reader, _ := join(t, url)
	sender, _ := join(t, url)
	reader.expect("peer-joined")
	// Its reader stops taking events once its queue is full.
	slow := newSSEClient(t, &http.Client{Transport: &http.Transport{DialContext: dialSmallReadBuffer}}, "http://localhost:9080", "room=sse-slow")
	if err := slow.open(""); err != nil {
		t.Fatal(err)
	}
	slowID := slow.expectWelcome().ID
	reader.expect("peer-joined")
	sender.expect("peer-joined")
	floodUntilDropped(t, reader, sender, slowID)
}

// Streams opened and ended every way leave no goroutine and no session.
func TestSSEChurnLeavesNothingBehind(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	warm, _ := joinSSE(t, sseBase, "room=sse-warm")
	warm.leave()
	warm.client.CloseIdleConnections()
	eventually(t, 10*time.Second, "the warm-up session to go", func() bool {
		r, _ := hubTotals()
		return r == 0 && session.LiveSessions() == 0
	})
	baseline := runtime.NumGoroutine()

	const workers, rounds = 8, 10
	inParallel(t, workers, func(w int) error {
		c := newSSEClient(t, nil, sseBase, "")
		defer c.client.CloseIdleConnections()
		for r := range rounds {
			c.query = "room=sse-churn" + string(rune('a'+(w+r)%3))
			if err := c.churnRound(r); err != nil {
				return fmt.Errorf("worker %d round %d: %w", w, r, err)
			}
		}
		return nil
	})
	// Dropped streams' sessions stay away for resume_window (2s).
	eventually(t, 20*time.Second, "every session, room and peer to be freed", func() bool {
		r, p := hubTotals()
		return r == 0 && p == 0 && session.LiveSessions() == 0
	})
	eventually(t, 20*time.Second, "goroutines to return to the baseline", func() bool {
		return runtime.NumGoroutine() <= baseline+4
	})
}

// churnRound opens a stream, and ends it by leaving, by dropping it, or
// by an error that ends the session.
func (c *sseClient) churnRound(r int) error {
	c.token, c.lastSeq = "", 0
	if err := c.open(""); err != nil {
		return err
	}
	f, err := c.readFor(frameWait)
	if err != nil {
		return err
	}
	if f.Type != "welcome" {
		if f.Code != "room_full" {
			return fmt.Errorf("first frame %+v", f)
		}
		c.drop()
		return nil
	}
	c.token = f.Resume
	if r%3 == 0 {
		if status, f, err := c.postErr(c.token, []byte(`{"type":"broadcast","data":1}`)); err != nil || status != http.StatusNoContent {
			return fmt.Errorf("broadcast: %d %+v %v", status, f, err)
		}
	}
	switch r % 3 {
	case 0: // leave, and read to the end
		if status, f, err := c.postErr(c.token, []byte(`{"type":"leave"}`)); err != nil || status != http.StatusNoContent {
			return fmt.Errorf("leave: %d %+v %v", status, f, err)
		}
		for {
			_, err := c.readFor(frameWait)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		c.drop()
	case 1: // an abrupt drop: away, then gone when the window runs out
		c.drop()
	case 2: // a fatal frame ends the session
		big := []byte(`{"type":"broadcast","data":"` + strings.Repeat("x", 5000) + `"}`)
		if status, _, err := c.postErr(c.token, big); err != nil || status != http.StatusRequestEntityTooLarge {
			return fmt.Errorf("too large: %d %v", status, err)
		}
		c.drop()
	}
	c.token = ""
	return nil
}

// A config reload ends the old server's streams at once, however long its
// grace period (net/http waits for open responses), and the client resumes
// on the new config.
func TestSSEStreamEndsOnReload(t *testing.T) {
	config := strings.Replace(withGlobals("", signalingSite), "grace_period 1s", "grace_period 1m", 1)
	loadConfig(t, "text/caddyfile", config, false)
	ws, _ := join(t, roomURL+"sse-reload")
	s, _ := joinSSE(t, sseBase, "room=sse-reload")
	ws.expect("peer-joined")

	loadConfig(t, "text/caddyfile", strings.Replace(config, "ping_interval 2s", "ping_interval 3s", 1), false)
	s.expectEnd() // within frameWait, long before the grace period
	if err := s.resume(); err != nil {
		t.Fatal(err)
	}
	if w := s.expectWelcome(); !w.Resumed {
		t.Fatalf("welcome after the reload: %+v", w)
	}
	ws.signal(s.id, "after reload")
	if f := s.expect("signal"); f.From != ws.id {
		t.Fatalf("after reload: %+v", f)
	}
	ws.roundTrip() // no peer-left
}

// A session resumes on the other transport: a WebSocket peer that lost
// its connection comes back over SSE, and back again over a WebSocket.
func TestResumeAcrossTransports(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	a, wa := join(t, roomURL+"across") // seq 1: welcome
	b, _ := join(t, roomURL+"across")
	a.expect("peer-joined") // seq 2
	a.conn.UnderlyingConn().Close()
	for i := range 5 {
		b.signal(a.id, sseSignal{N: i, SDP: "v=0\r\n"})
	}

	s := newSSEClient(t, nil, sseBase, "room=across")
	s.token, s.lastSeq = wa.Resume, 2
	if err := s.open("&resume=" + wa.Resume + "&last_seq=2"); err != nil {
		t.Fatal(err)
	}
	if w := s.expectWelcome(); !w.Resumed || w.ID != a.id {
		t.Fatalf("resume over SSE: %+v", w)
	}
	expectSignals(t, sseSignals(s), b.id, 0, 5) // seq 3..7, checked by readFor
	s.signal(b.id, sseSignal{N: 0, SDP: "v=0\r\n"})
	expectSignals(t, wsSignals(b), a.id, 0, 1)

	// And back: the stream drops, the session resumes on a WebSocket.
	s.drop()
	b.signal(a.id, sseSignal{N: 5, SDP: "v=0\r\n"})
	back := dial(t, fmt.Sprintf("%s&resume=%s&last_seq=%d", roomURL+"across", s.token, s.lastSeq), "")
	if w := back.expect("welcome"); w.ID != a.id {
		t.Fatalf("resume over a WebSocket: %+v", w)
	}
	back.id = a.id
	expectSignals(t, wsSignals(back), b.id, 5, 1)
	back.roundTrip()
	b.roundTrip() // b never saw a leave
}
