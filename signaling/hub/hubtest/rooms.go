package hubtest

import (
	"slices"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
)

// rooms checks hub.Rooms, when both hubs implement it: every room with
// its member count and start, members in join order with their join times
// and servers, from either hub, and a room gone once its last member left.
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
			for _, r := range h.ListRooms() {
				if r.StartedAt.Before(before.Add(-time.Second)) || r.StartedAt.After(time.Now()) {
					t.Fatalf("hub %d: room %s started at %v, joined after %v", i, r.Room, r.StartedAt, before)
				}
				got[r.Room] = r.Peers
			}
			return len(got) == len(want) && got["ra"] == want["ra"] && got["rb"] == want["rb"]
		})
		Eventually(t, "members in join order", func() bool {
			ms := h.RoomMembers("ra")
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
	b.Leave("rb", "k9")
	for i, h := range []hub.Rooms{ra, rb} {
		Eventually(t, "an empty room gone", func() bool {
			for _, r := range h.ListRooms() {
				if r.Room == "rb" {
					return false
				}
			}
			return len(h.RoomMembers("rb")) == 0
		})
		if got := h.RoomMembers("nowhere"); len(got) != 0 {
			t.Fatalf("hub %d lists %v in a room nobody is in", i, got)
		}
	}
}
