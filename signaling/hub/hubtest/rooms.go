package hubtest

import (
	"slices"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
)

// rooms checks hub.Rooms, when both hubs implement it: every room with
// its member count and start, members in join order with their join times
// and servers, from either hub; a message and an oust through a member's
// Peer reach the member from the server that does not hold it; and a room
// is gone once its last member left.
func rooms(t *testing.T, a, b hub.Hub) {
	ra, okA := a.(hub.Rooms)
	rb, okB := b.(hub.Rooms)
	if !okA || !okB {
		t.Skipf("%T does not implement hub.Rooms: the rooms API answers 501 for its hubs", a)
	}
	before := time.Now()
	ids := []string{"k3", "k1", "k2"}
	hubs := []hub.Hub{a, b, a}
	ps := make(map[string]*Peer)
	for i, id := range ids {
		ps[id] = NewPeer(id)
		Join(t, hubs[i], "ra", ps[id], 6)
	}
	other := NewPeer("k9")
	Join(t, b, "rb", other, 6)
	want := map[string]int{"ra": 3, "rb": 1}
	for i, h := range []hub.Rooms{ra, rb} {
		Eventually(t, "every room listed", func() bool {
			got := make(map[string]int)
			for _, r := range listRooms(t, h) {
				if r.StartedAt.Before(before.Add(-time.Second)) || r.StartedAt.After(time.Now()) {
					t.Fatalf("hub %d: room %s started at %v, joined after %v", i, r.Room, r.StartedAt, before)
				}
				got[r.Room] = r.Peers
			}
			return len(got) == len(want) && got["ra"] == want["ra"] && got["rb"] == want["rb"]
		})
		Eventually(t, "members in join order", func() bool {
			ms := roomMembers(t, h, "ra")
			var got []string
			for j, m := range ms {
				if m.User != "u-"+m.ID || m.Node == "" || m.Peer == nil || m.Peer.ID() != m.ID {
					t.Fatalf("hub %d lists %+v", i, m)
				}
				if j > 0 && m.JoinedAt.Before(ms[j-1].JoinedAt) {
					t.Fatalf("hub %d: %s joined at %v, before %s at %v", i, m.ID, m.JoinedAt, ms[j-1].ID, ms[j-1].JoinedAt)
				}
				got = append(got, m.ID)
			}
			return slices.Equal(got, ids)
		})
	}
	ps["k3"].Expect(t, "peer-joined", "k1")
	ps["k3"].Expect(t, "peer-joined", "k2")
	ps["k1"].Expect(t, "peer-joined", "k2")
	roomsAct(t, a, b, ra, rb, ps)
	b.Leave("rb", "k9")
	for i, h := range []hub.Rooms{ra, rb} {
		Eventually(t, "an empty room gone", func() bool {
			for _, r := range listRooms(t, h) {
				if r.Room == "rb" {
					return false
				}
			}
			return len(roomMembers(t, h, "rb")) == 0
		})
		if got := roomMembers(t, h, "nowhere"); len(got) != 0 {
			t.Fatalf("hub %d lists %v in a room nobody is in", i, got)
		}
	}
}

// roomsAct sends a message to a member of room ra through the Peer each
// hub lists for a member the other holds (k1 on b, k3 on a), then ousts k1
// through a's listing as the rooms API does: Fatal and Leave when the
// Peer is a hub.Ender (a clustered hub's stand-in), else Close and the
// handler's Leave.
func roomsAct(t *testing.T, a, b hub.Hub, ra, rb hub.Rooms, ps map[string]*Peer) {
	t.Helper()
	for i, h := range []hub.Rooms{ra, rb} {
		id := []string{"k1", "k3"}[i]
		if !listed(t, h, "ra", id).Peer.Send([]byte(`{"type":"server-message","data":1}`)) {
			t.Fatalf("hub %d: sending %s a message failed", i, id)
		}
		ps[id].Expect(t, "server-message", "")
	}
	const closeRemoved = 4406
	p := listed(t, ra, "ra", "k1").Peer
	if e, ok := p.(hub.Ender); ok {
		e.Fatal("removed", "removed from the room", closeRemoved)
		e.Leave()
	} else {
		p.Close(closeRemoved, "removed")
		b.Leave("ra", "k1")
	}
	Eventually(t, "k1 closed with 4406", func() bool { return ps["k1"].ClosedWith() == closeRemoved })
	ps["k3"].Expect(t, "peer-left", "k1")
	ps["k2"].Expect(t, "peer-left", "k1")
	for _, h := range []hub.Rooms{ra, rb} {
		Eventually(t, "k1 no longer listed", func() bool {
			var got []string
			for _, m := range roomMembers(t, h, "ra") {
				got = append(got, m.ID)
			}
			return slices.Equal(got, []string{"k3", "k2"})
		})
	}
	a.Leave("ra", "k3")
	a.Leave("ra", "k2")
}

// listed returns room's member id as h lists it.
func listed(t *testing.T, h hub.Rooms, room, id string) hub.MemberInfo {
	t.Helper()
	for _, m := range roomMembers(t, h, room) {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("%s is not listed in %s", id, room)
	return hub.MemberInfo{}
}

func listRooms(t *testing.T, h hub.Rooms) []hub.RoomInfo {
	t.Helper()
	rs, err := h.ListRooms()
	if err != nil {
		t.Fatalf("listing rooms: %v", err)
	}
	return rs
}

func roomMembers(t *testing.T, h hub.Rooms, room string) []hub.MemberInfo {
	t.Helper()
	ms, err := h.RoomMembers(room)
	if err != nil {
		t.Fatalf("listing the members of %s: %v", room, err)
	}
	return ms
}
