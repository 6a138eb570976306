package caddytest

import (
	"net/url"
	"strconv"
	"testing"
)

// A session whose connection went stale without the server noticing (a
// reloaded page, a dead socket) takes its own seat back in a full room by
// presenting its session token, over and over.
func TestSessionTakesOverItsSeatInAFullRoom(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	const room = "takeover"
	others := make([]*wsClient, 5)
	for i := range others {
		others[i], _ = join(t, roomURL+room)
		for _, o := range others[:i] {
			o.expect("peer-joined")
		}
	}
	me, w := join(t, roomURL+room)
	for _, o := range others {
		o.expect("peer-joined")
	}
	token := w.Resume
	if token == "" {
		t.Fatal("the welcome carries no session token")
	}
	// Without the token, the seat is taken: a seventh peer is refused.
	extra := dial(t, roomURL+room, "")
	extra.expectError("room_full")

	for i := range 20 {
		// The old connection stays open and silent, as a half-open one does.
		next, w := join(t, roomURL+room+"&resume="+url.QueryEscape(token))
		if len(w.Peers) != 5 || w.ID == me.id {
			t.Fatalf("takeover %d: welcome %+v", i, w)
		}
		for _, p := range w.Peers {
			if p.ID == me.id {
				t.Fatalf("takeover %d: the replaced connection is still listed", i)
			}
		}
		me.expectError("replaced")
		me.expectClose(4410)
		for _, o := range others {
			if f := o.expect("peer-left"); f.ID != me.id {
				t.Fatalf("takeover %d: peer-left %q, want %q", i, f.ID, me.id)
			}
			if f := o.expect("peer-joined"); f.ID != next.id {
				t.Fatalf("takeover %d: peer-joined %q, want %q", i, f.ID, next.id)
			}
		}
		// The new connection relays both ways.
		next.signal(others[0].id, i)
		if f := others[0].expect("signal"); f.From != next.id {
			t.Fatalf("takeover %d: signal from %q", i, f.From)
		}
		others[1].signal(next.id, i)
		if f := next.expect("signal"); f.From != others[1].id {
			t.Fatalf("takeover %d: signal from %q", i, f.From)
		}
		me, token = next, w.Resume
	}
	// An old token no longer names a member: the seat stays taken.
	stale := dial(t, roomURL+room+"&resume="+url.QueryEscape(w.Resume), "")
	stale.expectError("room_full")
}

// A token only works for the room and session it was issued for.
func TestSessionTokenRefusedElsewhere(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	a, w := join(t, roomURL+"tok-a")
	for i, tc := range []struct{ name, token string }{
		{"another room's token", w.Resume},
		{"a forged token", a.id + ".AAAAAAAAAAAAAAAAAAAAAA"},
		{"garbage", "%00%ff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := roomURL + "tok-b" + strconv.Itoa(i)
			b, _ := join(t, room)
			c, _ := join(t, room+"&resume="+url.QueryEscape(tc.token))
			b.expect("peer-joined")
			c.roundTrip()
			b.roundTrip()
			// Nobody was evicted: both stay in their room, a stays in tok-a.
			a.roundTrip()
		})
	}
}
