package signaling

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-webrtc/caddy-webrtc/internal/wstest"
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

// A client that lost its connection resumes its session with the token
// of its welcome and the last seq it processed: the session keeps its id,
// the welcome says resumed, and exactly the frames after last_seq follow,
// in order, those sent while it was away included. The room saw nothing
// of it. The token worked once: presented again, it joins afresh.
func TestResumeReattachesTheSessionAndReplaysWhatFollowsLastSeq(t *testing.T) {
	base, _ := testServer(t, withResume)
	a, aw := wstest.Join(t, base, "resume")
	b, bw := wstest.Join(t, base, "resume")
	if f := wstest.NextFrame(t, a); f.Type != wire.TypePeerJoined || f.ID != bw.ID {
		t.Fatalf("a got %+v, want b's peer-joined", f)
	}
	for n := 1; n <= 3; n++ {
		wstest.SendSignal(t, b, aw.ID, n)
	}
	first := wstest.ExpectSignals(t, a, bw.ID, 1)
	wstest.ExpectSignals(t, a, bw.ID, 2, 3)
	_ = a.NetConn().Close() // lost, without a goodbye
	for n := 4; n <= 5; n++ {
		wstest.SendSignal(t, b, aw.ID, n)
	}

	a2 := wstest.Dial(t, base, fmt.Sprintf("room=resume&resume=%s&last_seq=%d", url.QueryEscape(aw.Resume), first), nil)
	w := wstest.NextFrame(t, a2)
	if w.Type != wire.TypeWelcome || !w.Resumed || w.ID != aw.ID || w.Resume == "" || w.Resume == aw.Resume {
		t.Fatalf("answer to the resume %+v, want a resumed welcome for %s with a new token", w, aw.ID)
	}
	if f := wstest.NextFrame(t, a2); wstest.SignalN(t, f) != 2 || f.Seq != first+1 {
		t.Fatalf("first replayed frame %+v, want signal 2 with seq %d", f, first+1)
	}
	wstest.ExpectSignals(t, a2, bw.ID, 3, 4, 5)

	// b saw no peer-left nor peer-joined: its next frame is a's.
	wstest.SendSignal(t, a2, bw.ID, 6)
	if f := wstest.NextFrame(t, b); f.From != aw.ID || wstest.SignalN(t, f) != 6 {
		t.Fatalf("b got %+v, want a's signal 6", f)
	}

	// The token is spent.
	a3 := wstest.Dial(t, base, "room=resume&resume="+url.QueryEscape(aw.Resume)+"&last_seq=0", nil)
	if f := wstest.NextFrame(t, a3); f.Type != wire.TypeError || f.Code != wire.CodeResumeFailed {
		t.Fatalf("a spent token got %+v, want resume_failed", f)
	}
	if w := wstest.NextFrame(t, a3); w.Type != wire.TypeWelcome || w.Resumed || w.ID == aw.ID {
		t.Fatalf("after resume_failed %+v, want a fresh welcome with a new id", w)
	}
}

// A resume with a token no session has says resume_failed, not fatal,
// then joins the room afresh on the same connection: a fresh welcome, and
// the room is told of a new peer.
func TestResumeWithAnUnknownTokenJoinsAfresh(t *testing.T) {
	base, _ := testServer(t, withResume)
	b, _ := wstest.Join(t, base, "fresh")
	for _, token := range []string{"garbage", session.Token("test:"+t.Name(), "fresh", session.NewPeerID(), 0)} {
		ws := wstest.Dial(t, base, "room=fresh&last_seq=0&resume="+url.QueryEscape(token), nil)
		if f := wstest.NextFrame(t, ws); f.Type != wire.TypeError || f.Code != wire.CodeResumeFailed {
			t.Fatalf("token %q: first frame %+v, want resume_failed", token, f)
		}
		w := wstest.NextFrame(t, ws)
		if w.Type != wire.TypeWelcome || w.Resumed || w.ID == "" || w.Resume == "" {
			t.Fatalf("token %q: after resume_failed %+v, want a fresh welcome", token, w)
		}
		if f := wstest.NextFrame(t, b); f.Type != wire.TypePeerJoined || f.ID != w.ID {
			t.Fatalf("token %q: the room got %+v, want peer-joined %s", token, f, w.ID)
		}
	}
}

// A newer connection of the same session displaces the older one, which
// is told replaced and closed with 4410 (wire.CloseReplaced); the session
// goes on on the newer one, and the room sees no change.
func TestADisplacedConnectionIsToldReplaced(t *testing.T) {
	base, _ := testServer(t, withResume)
	a, aw := wstest.Join(t, base, "displace")
	b, bw := wstest.Join(t, base, "displace")
	f := wstest.NextFrame(t, a) // b's peer-joined
	a2 := wstest.Dial(t, base, fmt.Sprintf("room=displace&resume=%s&last_seq=%d", url.QueryEscape(aw.Resume), f.Seq), nil)
	if w := wstest.NextFrame(t, a2); !w.Resumed || w.ID != aw.ID {
		t.Fatalf("the newer connection got %+v, want a resumed welcome for %s", w, aw.ID)
	}
	if f := wstest.NextFrame(t, a); f.Type != wire.TypeError || f.Code != wire.CodeReplaced {
		t.Fatalf("the older connection got %+v, want error replaced", f)
	}
	if code := wstest.CloseCode(t, a); code != wire.CloseReplaced {
		t.Fatalf("the older connection closed with %d, want %d", code, wire.CloseReplaced)
	}
	wstest.SendSignal(t, b, aw.ID, 1)
	wstest.ExpectSignals(t, a2, bw.ID, 1)
}
