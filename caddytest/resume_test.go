package caddytest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
)

// resumer is a client that resumes its session the way client.js does: it
// numbers its frames, remembers the last server seq it processed, and on a
// new connection presents its token and last_seq, then resends what the
// server did not acknowledge.
type resumer struct {
	t       *testing.T
	base    string
	c       *wsClient
	id      string
	token   string
	lastSeq uint64
	sent    [][]byte // frames sent, frame i has seq i+1
}

func newResumer(t *testing.T, base string) *resumer {
	c, w := join(t, base)
	r := &resumer{t: t, base: base, c: c, id: w.ID, token: w.Resume, lastSeq: w.Seq}
	if w.Seq != 1 || w.ResumeWindow == 0 || w.Resume == "" {
		t.Fatalf("welcome %+v: want seq 1, a resume token and a window", w)
	}
	return r
}

// pairWithResumer opens room with a plain client and then a resumer.
func pairWithResumer(t *testing.T, room string) (*wsClient, *resumer) {
	t.Helper()
	a, _ := join(t, roomURL+room)
	b := newResumer(t, roomURL+room)
	a.expect("peer-joined")
	return a, b
}

// next reads a frame and checks it continues the sequence.
func (r *resumer) next() frame {
	r.t.Helper()
	f := r.c.next()
	if f.Seq != r.lastSeq+1 {
		r.t.Fatalf("frame %+v has seq %d, want %d", f, f.Seq, r.lastSeq+1)
	}
	r.lastSeq = f.Seq
	return f
}

// signal sends a numbered signal; a failed write is fine (the connection
// may be cut): the frame is resent after the resume.
func (r *resumer) signal(to string, data any) {
	b, _ := json.Marshal(map[string]any{"seq": len(r.sent) + 1, "type": "signal", "to": to, "data": data})
	r.sent = append(r.sent, b)
	_ = r.c.conn.WriteMessage(1, b)
}

// ping checks the session answers in sequence; membership changes may
// come first.
func (r *resumer) ping() {
	r.t.Helper()
	r.c.send(map[string]string{"type": "ping"})
	for f := r.next(); f.Type != "pong"; f = r.next() {
		if f.Type != "peer-joined" && f.Type != "peer-left" {
			r.t.Fatalf("got %+v, want pong", f)
		}
	}
}

// resume reconnects with the session's token and returns the welcome.
func (r *resumer) resume() frame {
	r.t.Helper()
	c := dial(r.t, r.resumeURL(r.token, r.lastSeq), "")
	w := c.expect("welcome")
	if !w.Resumed || w.ID != r.id || w.Seq != 0 || w.Ack == nil || w.Resume == r.token {
		r.t.Fatalf("resume answered %+v", w)
	}
	r.c, r.token = c, w.Resume
	for _, b := range r.sent[*w.Ack:] {
		c.sendRaw(1, b)
	}
	return w
}

func (r *resumer) resumeURL(token string, lastSeq uint64) string {
	return fmt.Sprintf("%s&resume=%s&last_seq=%d", r.base, url.QueryEscape(token), lastSeq)
}

// cut drops the TCP connection without a close frame, as a network does.
func (r *resumer) cut() { r.c.conn.UnderlyingConn().Close() }

// A peer whose connection is cut while a room-mate sends it 200 signals and
// it sends 50 resumes: every frame arrives once, in order, both ways, and
// the bystander never sees it leave.
func TestResumeLosesNothing(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	base := roomURL + "lossless"
	a, _ := join(t, base)
	by, _ := join(t, base)
	a.expect("peer-joined")
	b := newResumer(t, base)
	a.expect("peer-joined")
	by.expect("peer-joined")

	const toB, toA = 200, 50
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range toB {
			_ = a.conn.WriteJSON(map[string]any{"type": "signal", "to": b.id, "data": i})
		}
	}()
	var got []int
	receive := func(until int) {
		for len(got) < until {
			f := b.next()
			if f.Type != "signal" || f.From != a.id {
				t.Fatalf("b got %+v", f)
			}
			var v int
			_ = json.Unmarshal(f.Data, &v)
			got = append(got, v)
		}
	}
	receive(60)
	for i := range toA / 2 {
		b.signal(a.id, i)
	}
	b.cut()
	b.resume()
	for i := toA / 2; i < toA; i++ {
		b.signal(a.id, i)
	}
	receive(toB)
	<-sent
	for i, v := range got {
		if v != i {
			t.Fatalf("b's signal %d carries %d: lost, doubled or out of order", i, v)
		}
	}
	for i := range toA {
		f := a.expect("signal")
		if string(f.Data) != fmt.Sprint(i) || f.From != b.id {
			t.Fatalf("a's signal %d is %+v", i, f)
		}
	}
	a.roundTrip()  // nothing more: no duplicate
	by.roundTrip() // no peer-left, no peer-joined
}

// A session whose peer does not come back within the window leaves; its
// token then gets resume_failed and a fresh join.
func TestResumeWindowRunsOut(t *testing.T) {
	loadCaddyfile(t, signalingSite, false) // resume_window 2s
	a, b := pairWithResumer(t, "expiry")
	start := time.Now()
	b.cut()
	if f := a.expect("peer-left"); f.ID != b.id {
		t.Fatalf("peer-left %+v", f)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("left after %s, within the 2s window", took)
	}
	c := dial(t, b.resumeURL(b.token, b.lastSeq), "")
	c.expectError("resume_failed")
	if w := c.expect("welcome"); w.Resumed || w.ID == b.id || w.Seq != 1 {
		t.Fatalf("after a failed resume: %+v", w)
	}
	a.expect("peer-joined")
}

// Tokens that are forged, used, from another room or hub, or a last_seq the
// server cannot replay from, get resume_failed and a fresh join; the
// session they name is not disturbed.
func TestResumeRefusesBadTokens(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	a, b := pairWithResumer(t, "tokens")
	b.cut()
	old := b.token
	b.resume()
	b.ping()
	join(t, roomURL+"elsewhere")
	for name, u := range map[string]string{
		"used token":   b.resumeURL(old, 2),
		"forged token": b.resumeURL(b.id+".1.AAAAAAAAAAAAAAAAAAAAAA", 1),
		"garbage":      b.resumeURL("x", 0),
		"other room":   fmt.Sprintf("%s&resume=%s&last_seq=1", roomURL+"elsewhere", url.QueryEscape(b.token)),
		"future seq":   b.resumeURL(b.token, 999),
		"bad last_seq": b.resumeURL(b.token, 0) + "x",
	} {
		c := dial(t, u, "")
		c.expectError("resume_failed")
		w := c.expect("welcome")
		if w.Resumed || w.ID == b.id {
			t.Fatalf("%s: %+v", name, w)
		}
		c.leave()
	}
	// The session itself carries on, and nobody saw it leave.
	b.ping()
	a.send(map[string]string{"type": "ping"})
	for f := a.next(); f.Type != "pong"; f = a.next() {
		if f.Type != "peer-joined" && f.Type != "peer-left" || f.ID == b.id {
			t.Fatalf("a got %+v", f)
		}
	}
}

// An away peer that misses more than its buffer holds (256 frames) is
// dropped and its session freed; it cannot resume.
func TestResumeBufferOverflowDropsThePeer(t *testing.T) {
	loadCaddyfile(t, strings.Replace(signalingSite, "resume_window 2s", "resume_window 1m", 1), false)
	before := scrapeMetrics(t)
	// Away sessions of earlier tests run out first, so the count is steady.
	expectMetrics(t, before, nil, map[string]float64{`caddy_webrtc_signaling_away_peers{hub="default"}`: 0})
	sessionsBefore := session.LiveSessions()
	a, b := pairWithResumer(t, "overflow")
	b.cut()
	expectMetrics(t, before, nil, map[string]float64{`caddy_webrtc_signaling_away_peers{hub="default"}`: 1})
	for i := range 300 {
		a.signal(b.id, i)
	}
	// Signals sent once b is out of the room, and possibly just before its
	// peer-left is queued, are answered unknown_peer.
	f := a.next()
	for f.Type == "error" && f.Code == "unknown_peer" {
		f = a.next()
	}
	if f.Type != "peer-left" || f.ID != b.id {
		t.Fatalf("got %+v, want peer-left", f)
	}
	expectMetrics(t, before, map[string]float64{`caddy_webrtc_signaling_resumes_total{hub="default",result="overflow"}`: 1},
		map[string]float64{`caddy_webrtc_signaling_away_peers{hub="default"}`: 0})
	// Its session, and the frames it held, are gone: only a's is left.
	eventually(t, 10*time.Second, "b's session to go", func() bool { return session.LiveSessions() == sessionsBefore+1 })
	c := dial(t, b.resumeURL(b.token, b.lastSeq), "")
	c.expectError("resume_failed")
}

// A resume while the server still holds the old connection open (a
// half-open phone connection) takes over: the old one gets replaced/4410.
func TestResumeTakesOverAHalfOpenConnection(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	a, b := pairWithResumer(t, "halfopen")
	old := b.c
	b.resume()
	old.expectError("replaced")
	old.expectClose(4410)
	a.signal(b.id, "still there")
	if f := b.next(); f.Type != "signal" || string(f.Data) != `"still there"` {
		t.Fatalf("after the takeover: %+v", f)
	}
	a.roundTrip() // no peer-left, no peer-joined
}

// A leave frame leaves at once; a resend of a frame already processed is
// dropped.
func TestLeaveFrameAndResentFrames(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	a, b := pairWithResumer(t, "leave")
	b.signal(a.id, "once")
	b.c.sendRaw(1, b.sent[0]) // the same seq again
	if f := a.expect("signal"); string(f.Data) != `"once"` {
		t.Fatalf("signal %+v", f)
	}
	a.roundTrip()
	b.c.send(map[string]string{"type": "leave"})
	if f := a.expect("peer-left"); f.ID != b.id {
		t.Fatalf("peer-left %+v", f)
	}
	b.c.expectClose(1000)
}
