package natshub

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub/hubtest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// stuckPeer is a local peer that stops reading once stuck: its Send then
// waits until the test releases it (a sender held for a slow reader, as
// long as the test likes), and its TrySend finds the queue full.
type stuckPeer struct {
	*hubtest.Peer
	stuck   atomic.Bool
	release chan struct{}
	once    sync.Once
	waiting atomic.Int32 // senders waiting in Send
}

func newStuckPeer(t *testing.T, id string) *stuckPeer {
	p := &stuckPeer{Peer: hubtest.NewPeer(id), release: make(chan struct{})}
	t.Cleanup(p.unstick) // before the hubs shut down: cleanups run last first
	return p
}

// joinStuck joins p (not yet stuck) to room.
func joinStuck(t *testing.T, h *Hub, room string, p *stuckPeer) {
	t.Helper()
	req := hub.JoinRequest{MaxPeers: 6, Welcome: func([]wire.PeerInfo) []byte {
		return fmt.Appendf(nil, `{"type":"welcome","id":%q}`, p.ID())
	}}
	if _, err := h.Join(room, p, req); err != nil {
		t.Fatal(err)
	}
	p.Expect(t, "welcome", p.ID())
}

func (p *stuckPeer) Send(f []byte) bool {
	if !p.stuck.Load() {
		return p.Peer.Send(f)
	}
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	<-p.release
	return false
}

func (p *stuckPeer) TrySend(f []byte) bool {
	if !p.stuck.Load() {
		return p.Peer.TrySend(f)
	}
	return false
}

func (p *stuckPeer) unstick() { p.once.Do(func() { close(p.release) }) }

// withinWait bounds how long a frame that nothing should hold up may take
// (a -race build on a busy machine), far below how long a stuck peer
// holds what waits for it.
const withinWait = 2 * time.Second

// A peer that stops reading holds up no other room's frames from other
// servers: the dispatcher that relays them does not wait for it; the
// frame waits for the peer on its own.
func TestAStuckPeerDoesNotHoldUpOtherRoomsFrames(t *testing.T) {
	srv := startNATS(t)
	hs := newHubs(t, srv.URL(), 2)
	stuck := newStuckPeer(t, "stuck")
	joinStuck(t, hs[1], "slow", stuck)
	sender := hubtest.NewPeer("sender")
	hubtest.Join(t, hs[0], "slow", sender, 6)
	stuck.Expect(t, "peer-joined", "sender")
	x, y := hubtest.NewPeer("x"), hubtest.NewPeer("y")
	hubtest.Join(t, hs[0], "fast", x, 6)
	hubtest.Join(t, hs[1], "fast", y, 6)
	x.Expect(t, "peer-joined", "y")

	stuck.stuck.Store(true)
	if err := hs[0].Deliver("slow", "sender", "stuck", []byte(`{"type":"signal","from":"sender"}`)); err != nil {
		t.Fatal(err)
	}
	if err := hs[0].Deliver("fast", "x", "y", []byte(`{"type":"signal","from":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if _, ok := y.NextWithin(withinWait); !ok {
		t.Fatalf("a frame of another room did not arrive within %s (stuck peer: %d sender(s) waiting in Send)",
			withinWait, stuck.waiting.Load())
	}
	eventually(t, withinWait, "the frame waiting for the stuck peer", func() bool { return stuck.waiting.Load() == 1 })
}

// A peer that reads nothing while frames from other servers keep coming
// is disconnected as too slow once its feed is full, as a full queue
// would have it; the others' frames flow meanwhile.
func TestAStuckPeersFeedOverflowDisconnectsIt(t *testing.T) {
	srv := startNATS(t)
	hs := newHubs(t, srv.URL(), 2)
	stuck := newStuckPeer(t, "stuck")
	joinStuck(t, hs[1], "r", stuck)
	sender, other := hubtest.NewPeer("sender"), hubtest.NewPeer("other")
	hubtest.Join(t, hs[0], "r", sender, 6)
	hubtest.Join(t, hs[1], "r", other, 6)
	stuck.Expect(t, "peer-joined", "sender")
	stuck.Expect(t, "peer-joined", "other")
	sender.Expect(t, "peer-joined", "other")

	stuck.stuck.Store(true)
	big := make([]byte, 64<<10)
	copy(big, `{"type":"signal","from":"sender"}`)
	for i := 0; i < maxFeedBytes/len(big)+2; i++ {
		if err := hs[0].Deliver("r", "sender", "stuck", big); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if err := hs[0].Deliver("r", "sender", "other", []byte(`{"type":"signal","from":"sender"}`)); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.NextWithin(withinWait); !ok {
		t.Fatalf("a room-mate's frame did not arrive within %s", withinWait)
	}
	eventually(t, withinWait, "the stuck peer disconnected", func() bool {
		return stuck.ClosedWith() == wire.CloseTooSlow
	})
}

var _ hub.Peer = (*stuckPeer)(nil)

// leftHere says whether a local peer of h is marked as leaving room.
func leftHere(h *Hub, room, id string) bool {
	v := h.view(h.roomKey(room))
	if v == nil {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	l := v.locals[id]
	return l != nil && l.left
}

// A local peer leaves while its frame waits for a stuck room-mate: the
// others must get that frame before its peer-left, so a change of the
// room from another server waits for it, but the dispatcher goes on with
// other rooms meanwhile.
func TestALeavingSendersFrameInFlightHoldsUpOnlyItsRoom(t *testing.T) {
	srv := startNATS(t)
	hs := newHubs(t, srv.URL(), 2)
	stuck := newStuckPeer(t, "stuck")
	joinStuck(t, hs[1], "r", stuck)
	w, l := hubtest.NewPeer("w"), hubtest.NewPeer("l")
	hubtest.Join(t, hs[1], "r", w, 6)
	hubtest.Join(t, hs[1], "r", l, 6)
	w.Expect(t, "peer-joined", "l")
	stuck.Expect(t, "peer-joined", "w")
	stuck.Expect(t, "peer-joined", "l")
	x, y := hubtest.NewPeer("x"), hubtest.NewPeer("y")
	hubtest.Join(t, hs[0], "fast", x, 6)
	hubtest.Join(t, hs[1], "fast", y, 6)
	x.Expect(t, "peer-joined", "y")

	stuck.stuck.Store(true)
	delivered := make(chan error, 1)
	go func() { delivered <- hs[1].Deliver("r", "l", "", []byte(`{"type":"broadcast","from":"l"}`)) }()
	eventually(t, withinWait, "l's broadcast waiting for the stuck peer", func() bool { return stuck.waiting.Load() == 1 })
	left := make(chan struct{})
	go func() { defer close(left); hs[1].Leave("r", "l") }()
	eventually(t, withinWait, "l leaving", func() bool { return leftHere(hs[1], "r", "l") })
	n := hubtest.NewPeer("n")
	hubtest.Join(t, hs[0], "r", n, 6) // its snapshot drops l from hs[1]'s view
	if err := hs[0].Deliver("fast", "x", "y", []byte(`{"type":"signal","from":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if _, ok := y.NextWithin(withinWait); !ok {
		t.Fatalf("a frame of another room did not arrive within %s", withinWait)
	}
	stuck.unstick()
	if err := <-delivered; err != nil {
		t.Fatal(err)
	}
	<-left
	w.Expect(t, "broadcast", "l")
	w.Expect(t, "peer-left", "l")
	w.Expect(t, "peer-joined", "n")
}
