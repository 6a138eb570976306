// Package hubtest is the conformance suite every hub.Hub
// implementation runs: membership events, welcome order, directed and
// broadcast delivery, order between two peers, the room cap, takeover,
// duplicate leave, nothing relayed after peer-left, and shutdown. A
// clustered hub runs it with two instances that share a backend, so every
// case also crosses between them.
package hubtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// Wait bounds how long a case waits for a frame to arrive.
var Wait = 10 * time.Second

// Pair returns two hubs that share their rooms: the same hub twice for an
// in-process implementation, two nodes of one cluster for a clustered one.
// Hubs with an optional Shutdown() method are shut down by the suite's
// shutdown case only; the factory cleans up otherwise.
type Pair func(t *testing.T) (a, b hub.Hub)

// Run runs every case.
func Run(t *testing.T, pair Pair) {
	cases := []struct {
		name string
		run  func(*testing.T, hub.Hub, hub.Hub)
	}{
		{"membership", membership},
		{"welcome lists members in join order", welcomeOrder},
		{"directed and broadcast delivery", delivery},
		{"order between two peers", order},
		{"room cap", roomCap},
		{"takeover of a stale seat", takeover},
		{"duplicate leave", duplicateLeave},
		{"unknown addressee and departed sender", unknowns},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := pair(t)
			c.run(t, a, b)
		})
	}
	t.Run("shutdown", func(t *testing.T) {
		a, _ := pair(t)
		shutdown(t, a)
	})
}

// Peer records what a hub sends it.
type Peer struct {
	id     string
	frames chan []byte
	mu     sync.Mutex
	closed int
}

// NewPeer returns a peer with the given id.
func NewPeer(id string) *Peer { return &Peer{id: id, frames: make(chan []byte, 4096)} }

// ID implements hub.Peer.
func (p *Peer) ID() string { return p.id }

// Send implements hub.Peer.
func (p *Peer) Send(f []byte) bool {
	select {
	case p.frames <- slices.Clone(f):
		return true
	default:
		return false
	}
}

// TrySend implements hub.Peer; the peer never waits.
func (p *Peer) TrySend(f []byte) bool { return p.Send(f) }

// Close implements hub.Peer.
func (p *Peer) Close(code int, _ string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = code
}

// ClosedWith returns the close code the hub closed the peer with, or 0.
func (p *Peer) ClosedWith() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Frame is a decoded server frame.
type Frame struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	User  string          `json:"user"`
	From  string          `json:"from"`
	Data  json.RawMessage `json:"data"`
	Peers []wire.PeerInfo `json:"peers"`
}

// Next returns the next frame, failing the test if none comes in time.
func (p *Peer) Next(t *testing.T) Frame {
	t.Helper()
	select {
	case b := <-p.frames:
		var f Frame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s got %q: %v", p.id, b, err)
		}
		return f
	case <-time.After(Wait):
		t.Fatalf("%s: no frame within %s", p.id, Wait)
		return Frame{}
	}
}

// NextWithin returns the next frame if one comes within d.
func (p *Peer) NextWithin(d time.Duration) (Frame, bool) {
	select {
	case b := <-p.frames:
		var f Frame
		if err := json.Unmarshal(b, &f); err != nil {
			return Frame{Type: "unreadable: " + string(b)}, true
		}
		return f, true
	case <-time.After(d):
		return Frame{}, false
	}
}

// Expect reads the next frame and checks its type and id (or sender).
func (p *Peer) Expect(t *testing.T, typ, id string) Frame {
	t.Helper()
	f := p.Next(t)
	if f.Type != typ || (id != "" && f.ID != id && f.From != id) {
		t.Fatalf("%s got %+v, want %s of %s", p.id, f, typ, id)
	}
	return f
}

// Quiet checks that nothing arrives for a short while (for frames that
// must not come; bounded, so a slow hub cannot hide a late one forever).
func (p *Peer) Quiet(t *testing.T) {
	t.Helper()
	select {
	case b := <-p.frames:
		t.Fatalf("%s got unexpected %s", p.id, b)
	case <-time.After(200 * time.Millisecond):
	}
}

func welcome(id string) func([]wire.PeerInfo) []byte {
	return func(m []wire.PeerInfo) []byte {
		b, _ := json.Marshal(map[string]any{"type": "welcome", "id": id, "peers": m})
		return b
	}
}

// Join joins p to room with a cap of max.
func Join(t *testing.T, h hub.Hub, room string, p *Peer, max int) {
	t.Helper()
	if _, err := h.Join(room, p, hub.JoinRequest{MaxPeers: max, Info: wire.PeerInfo{User: "u-" + p.id}, Welcome: welcome(p.id)}); err != nil {
		t.Fatalf("%s joining %s: %v", p.id, room, err)
	}
	p.Expect(t, "welcome", p.id)
}

func membership(t *testing.T, a, b hub.Hub) {
	p1, p2 := NewPeer("p1"), NewPeer("p2")
	Join(t, a, "r", p1, 6)
	Join(t, b, "r", p2, 6)
	if f := p1.Expect(t, "peer-joined", "p2"); f.User != "u-p2" {
		t.Fatalf("peer-joined carries user %q", f.User)
	}
	b.Leave("r", "p2")
	p1.Expect(t, "peer-left", "p2")
	a.Leave("r", "p1")
}

func welcomeOrder(t *testing.T, a, b hub.Hub) {
	var ps []*Peer
	for i := range 4 {
		p := NewPeer(fmt.Sprint("w", i))
		Join(t, []hub.Hub{a, b}[i%2], "r", p, 6)
		ps = append(ps, p)
	}
	last := NewPeer("last")
	if _, err := a.Join("r", last, hub.JoinRequest{MaxPeers: 6, Welcome: welcome("last")}); err != nil {
		t.Fatal(err)
	}
	w := last.Expect(t, "welcome", "last")
	var got []string
	for _, m := range w.Peers {
		got = append(got, m.ID)
	}
	if !slices.Equal(got, []string{"w0", "w1", "w2", "w3"}) {
		t.Fatalf("welcome lists %v, want join order", got)
	}
	if w.Peers[0].User != "u-w0" {
		t.Fatalf("welcome member info %+v", w.Peers[0])
	}
}

func delivery(t *testing.T, a, b hub.Hub) {
	p1, p2, p3 := NewPeer("d1"), NewPeer("d2"), NewPeer("d3")
	Join(t, a, "r", p1, 6)
	Join(t, b, "r", p2, 6)
	Join(t, a, "r", p3, 6)
	p1.Expect(t, "peer-joined", "d2")
	p1.Expect(t, "peer-joined", "d3")
	p2.Expect(t, "peer-joined", "d3")
	if err := a.Deliver("r", "d1", "d2", []byte(`{"type":"signal","from":"d1","data":1}`)); err != nil {
		t.Fatal(err)
	}
	p2.Expect(t, "signal", "d1")
	if err := b.Deliver("r", "d2", "", []byte(`{"type":"broadcast","from":"d2","data":2}`)); err != nil {
		t.Fatal(err)
	}
	p1.Expect(t, "broadcast", "d2")
	p3.Expect(t, "broadcast", "d2")
	p2.Quiet(t) // the sender gets no copy
	p3.Quiet(t) // nor does anyone a directed signal was not for
}

func order(t *testing.T, a, b hub.Hub) {
	p1, p2 := NewPeer("o1"), NewPeer("o2")
	Join(t, a, "r", p1, 6)
	Join(t, b, "r", p2, 6)
	p1.Expect(t, "peer-joined", "o2")
	const n = 500
	for i := range n {
		if err := a.Deliver("r", "o1", "o2", fmt.Appendf(nil, `{"type":"signal","from":"o1","data":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if f := p2.Expect(t, "signal", "o1"); string(f.Data) != fmt.Sprint(i) {
			t.Fatalf("frame %d carries %s", i, f.Data)
		}
	}
}

func roomCap(t *testing.T, a, b hub.Hub) {
	Join(t, a, "r", NewPeer("c1"), 2)
	Join(t, b, "r", NewPeer("c2"), 2)
	if _, err := a.Join("r", NewPeer("c3"), hub.JoinRequest{MaxPeers: 2, Welcome: welcome("c3")}); err != hub.ErrRoomFull {
		t.Fatalf("third peer: %v, want ErrRoomFull", err)
	}
	if _, err := b.Join("r", NewPeer("c4"), hub.JoinRequest{MaxPeers: 2, Welcome: welcome("c4")}); err != hub.ErrRoomFull {
		t.Fatalf("third peer on the other hub: %v, want ErrRoomFull", err)
	}
	b.Leave("r", "c2")
	Join(t, a, "r", NewPeer("c5"), 2)
}

func takeover(t *testing.T, a, b hub.Hub) {
	p1, old := NewPeer("t1"), NewPeer("t2")
	Join(t, a, "r", p1, 2)
	Join(t, b, "r", old, 2)
	p1.Expect(t, "peer-joined", "t2")
	next := NewPeer("t3")
	replaced, err := a.Join("r", next, hub.JoinRequest{MaxPeers: 2, Replace: "t2", Welcome: welcome("t3")})
	if err != nil {
		t.Fatalf("taking over a full room's seat: %v", err)
	}
	if replaced == nil || replaced.ID() != "t2" {
		t.Fatalf("replaced %v, want t2", replaced)
	}
	next.Expect(t, "welcome", "t3")
	p1.Expect(t, "peer-left", "t2")
	p1.Expect(t, "peer-joined", "t3")
}

func duplicateLeave(t *testing.T, a, b hub.Hub) {
	p1, p2 := NewPeer("l1"), NewPeer("l2")
	Join(t, a, "r", p1, 6)
	Join(t, b, "r", p2, 6)
	p1.Expect(t, "peer-joined", "l2")
	b.Leave("r", "l2")
	b.Leave("r", "l2")
	a.Leave("r", "l2")
	p1.Expect(t, "peer-left", "l2")
	p1.Quiet(t)
}

func unknowns(t *testing.T, a, b hub.Hub) {
	p1, p2 := NewPeer("u1"), NewPeer("u2")
	Join(t, a, "r", p1, 6)
	Join(t, b, "r", p2, 6)
	p1.Expect(t, "peer-joined", "u2")
	if err := a.Deliver("r", "u1", "nobody", []byte(`{}`)); err != hub.ErrUnknownPeer {
		t.Fatalf("to an unknown peer: %v, want ErrUnknownPeer", err)
	}
	b.Leave("r", "u2")
	p1.Expect(t, "peer-left", "u2")
	if err := b.Deliver("r", "u2", "u1", []byte(`{"type":"signal","from":"u2","data":0}`)); err != hub.ErrNotMember {
		t.Fatalf("from a departed peer: %v, want ErrNotMember", err)
	}
	p1.Quiet(t)
}

func shutdown(t *testing.T, h hub.Hub) {
	s, ok := h.(interface{ Shutdown() })
	if !ok {
		t.Skip("the hub has no Shutdown")
	}
	p := NewPeer("s1")
	Join(t, h, "r", p, 6)
	s.Shutdown()
	if code := p.ClosedWith(); code != wire.CloseGoingAway {
		t.Fatalf("close code %d after shutdown, want %d", code, wire.CloseGoingAway)
	}
	if _, err := h.Join("r", NewPeer("s2"), hub.JoinRequest{MaxPeers: 6, Welcome: welcome("s2")}); err != hub.ErrHubClosed {
		t.Fatalf("join after shutdown: %v, want ErrHubClosed", err)
	}
}
