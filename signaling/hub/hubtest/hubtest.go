// Package hubtest is the conformance suite every hub.Hub
// implementation runs. It covers every method of hub.Hub: Join
// (membership events, welcome order, the room cap, duplicate ids, the
// hub-wide caps, takeover), Leave (duplicate leave), Deliver (directed
// and broadcast delivery, order between two peers, unknown addressees and
// departed senders), Members (join order, after a leave and a rejoin),
// Stats (rooms, peers and local peers as peers join, are replaced and
// leave), Shutdown, Watcher (watcher.go), and Rooms when a hub implements
// it (rooms.go). It
// also covers the optional interfaces of a hub
// whose rooms span servers, when both hubs of the pair implement them,
// and skips them, saying why, when not: Tunnels (a tunnel to a peer's
// session from a server without peers, frames both ways in order, a close
// from either end and a refusal told to the other, unknown peers) and
// Posts (a post answered by the server holding its session, in order
// from either server, none answering). A clustered hub runs it with two
// instances that share a backend, so every case also crosses between
// them; what a clustered hub may learn late, such as another server's
// counts, is polled for until Wait.
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
// The suite shuts hubs down in its shutdown case only; the factory cleans
// up otherwise.
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
		{"duplicate id", duplicateID},
		{"hub-wide caps", hubCaps},
		{"members in join order", members},
		{"stats", stats},
		{"rooms", rooms},
		{"watcher: room started and finished once", watcher},
		{"tunnel: frames both ways in order, closed by the front", tunnelFrames},
		{"tunnel: closed by the home", tunnelClosedByHome},
		{"tunnel: refused by the home", tunnelRefused},
		{"tunnel: to a peer no other server holds", tunnelUnknown},
		{"posts", posts},
		{"shutdown", shutdown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := pair(t)
			c.run(t, a, b)
		})
	}
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

// Eventually polls cond until it holds, failing the test with what after
// Wait: for what a clustered hub learns from the others a little later.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !poll(cond) {
		t.Fatalf("%s: not within %s", what, Wait)
	}
}

// poll polls cond until it holds or Wait passes, and reports which.
func poll(cond func() bool) bool {
	deadline := time.Now().Add(Wait)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
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
	joinWith(t, h, room, p, hub.JoinRequest{MaxPeers: max, Info: wire.PeerInfo{User: "u-" + p.id}})
}

// joinWith joins p to room as req says, and reads its welcome.
func joinWith(t *testing.T, h hub.Hub, room string, p *Peer, req hub.JoinRequest) {
	t.Helper()
	req.Welcome = welcome(p.id)
	if _, err := h.Join(room, p, req); err != nil {
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
	// The caller disconnects the peer handed back; a clustered hub may
	// hand back a stand-in for a peer of another server, which that
	// server disconnects.
	replaced.Close(wire.CloseReplaced, wire.CodeReplaced)
	Eventually(t, "the replaced peer disconnected with 4410", func() bool { return old.ClosedWith() == wire.CloseReplaced })
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

func duplicateID(t *testing.T, a, b hub.Hub) {
	x, y := NewPeer("x"), NewPeer("y")
	Join(t, a, "r", x, 6)
	for _, h := range []hub.Hub{b, a} {
		again := NewPeer("x")
		if _, err := h.Join("r", again, hub.JoinRequest{MaxPeers: 6, Welcome: welcome("x")}); err != hub.ErrDuplicateID {
			t.Fatalf("a second x: %v, want ErrDuplicateID", err)
		}
		again.Quiet(t) // refused: no welcome
	}
	// The refusals told nobody anything, and the id is free elsewhere.
	Join(t, b, "r", y, 6)
	x.Expect(t, "peer-joined", "y")
	Join(t, b, "other", NewPeer("x"), 6)
	x.Quiet(t)
}

func hubCaps(t *testing.T, a, b hub.Hub) {
	capped := func(id string, rooms, peers int, replace string) hub.JoinRequest {
		return hub.JoinRequest{MaxRooms: rooms, MaxPeersTotal: peers, Replace: replace, Welcome: welcome(id)}
	}
	// The caps apply to the counts as the hub joined knows them, which
	// a clustered hub may learn late: each refusal waits for them.
	counted := func(h hub.Hub, rooms, peers int) {
		t.Helper()
		waitStats(t, "the hub joined", h, hub.HubStats{Rooms: rooms, Peers: peers, LocalPeers: -1})
	}
	joinWith(t, a, "r1", NewPeer("h1"), capped("h1", 2, 2, ""))
	joinWith(t, b, "r2", NewPeer("h2"), capped("h2", 2, 2, ""))
	counted(b, 2, 2)
	if _, err := b.Join("r3", NewPeer("h3"), capped("h3", 0, 2, "")); err != hub.ErrHubFull {
		t.Fatalf("a third peer with 2 at most: %v, want ErrHubFull", err)
	}
	// Taking over a seat adds no peer; the refused join left no room.
	joinWith(t, b, "r1", NewPeer("h4"), capped("h4", 0, 2, "h1"))
	counted(a, 2, 2)
	if _, err := a.Join("r3", NewPeer("h5"), capped("h5", 2, 0, "")); err != hub.ErrHubFull {
		t.Fatalf("a third room with 2 at most: %v, want ErrHubFull", err)
	}
	// A room that exists is no new room.
	joinWith(t, a, "r1", NewPeer("h5"), capped("h5", 2, 0, ""))
	b.Leave("r2", "h2")
	counted(a, 1, 2)
	joinWith(t, a, "r3", NewPeer("h6"), capped("h6", 2, 0, ""))
}

func members(t *testing.T, a, b hub.Hub) {
	// Ids out of their alphabetical order, which a hub sorting them
	// would show.
	ids := []string{"m3", "m1", "m4", "m2"}
	hubs := []hub.Hub{a, b, a, b}
	ps := make(map[string]*Peer)
	for i, id := range ids {
		ps[id] = NewPeer(id)
		Join(t, hubs[i], "r", ps[id], 6)
	}
	for i, id := range ids {
		for _, later := range ids[i+1:] {
			ps[id].Expect(t, "peer-joined", later)
		}
	}
	// Each member, on either hub, sees the others in join order.
	check := func(present []string) {
		t.Helper()
		for _, id := range present {
			want := slices.DeleteFunc(slices.Clone(present), func(m string) bool { return m == id })
			for i, h := range []hub.Hub{a, b} {
				var got []string
				for _, m := range h.Members("r", id) {
					if m.User != "u-"+m.ID {
						t.Fatalf("hub %d lists %+v for %s", i, m, id)
					}
					got = append(got, m.ID)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("hub %d lists %v for %s, want %v", i, got, id, want)
				}
			}
		}
	}
	check(ids)
	a.Leave("r", "m4")
	for _, id := range []string{"m3", "m1", "m2"} {
		ps[id].Expect(t, "peer-left", "m4")
	}
	check([]string{"m3", "m1", "m2"})
	// Back, on the other hub: last in join order now.
	ps["m4"] = NewPeer("m4")
	Join(t, b, "r", ps["m4"], 6)
	for _, id := range []string{"m3", "m1", "m2"} {
		ps[id].Expect(t, "peer-joined", "m4")
	}
	check([]string{"m3", "m1", "m2", "m4"})
	for i, h := range []hub.Hub{a, b} {
		if got := h.Members("nowhere", "m3"); len(got) != 0 {
			t.Fatalf("hub %d lists %v in a room nobody is in", i, got)
		}
	}
}

func stats(t *testing.T, a, b hub.Hub) {
	// For the same hub twice, every peer is local.
	local := func(onA, onB int) (int, int) {
		if a == b {
			return onA + onB, onA + onB
		}
		return onA, onB
	}
	want := func(rooms, peers, onA, onB int) {
		t.Helper()
		la, lb := local(onA, onB)
		for i, h := range []hub.Hub{a, b} {
			if st := waitStats(t, fmt.Sprint("hub ", i), h, hub.HubStats{Rooms: rooms, Peers: peers, LocalPeers: []int{la, lb}[i]}); st.Backend == "" {
				t.Fatalf("hub %d names no backend", i)
			}
		}
	}
	want(0, 0, 0, 0)
	Join(t, a, "r1", NewPeer("j1"), 6)
	want(1, 1, 1, 0)
	Join(t, b, "r1", NewPeer("j2"), 6)
	Join(t, a, "r2", NewPeer("j3"), 6)
	want(2, 3, 2, 1)
	// A takeover moves a seat from a to b.
	joinWith(t, b, "r1", NewPeer("j4"), hub.JoinRequest{Replace: "j1"})
	want(2, 3, 1, 2)
	a.Leave("r1", "j1") // as its connection, disconnected, would
	b.Leave("r1", "j2")
	want(2, 2, 1, 1)
	a.Leave("r2", "j3")
	want(1, 1, 0, 1)
	b.Leave("r1", "j4")
	want(0, 0, 0, 0)
}

// waitStats waits until h counts want's rooms and peers, and its local
// peers unless want's are negative, failing with the counts after Wait.
func waitStats(t *testing.T, name string, h hub.Hub, want hub.HubStats) hub.HubStats {
	t.Helper()
	var got hub.HubStats
	if !poll(func() bool {
		got = h.Stats()
		return got.Rooms == want.Rooms && got.Peers == want.Peers && (want.LocalPeers < 0 || got.LocalPeers == want.LocalPeers)
	}) {
		t.Fatalf("%s counts %+v, want %+v within %s", name, got, want, Wait)
	}
	return got
}

func shutdown(t *testing.T, a, b hub.Hub) {
	p, q := NewPeer("s1"), NewPeer("s2")
	Join(t, a, "r", p, 6)
	Join(t, b, "r", q, 6)
	p.Expect(t, "peer-joined", "s2")
	a.Shutdown()
	if code := p.ClosedWith(); code != wire.CloseGoingAway {
		t.Fatalf("close code %d after shutdown, want %d", code, wire.CloseGoingAway)
	}
	if _, err := a.Join("r", NewPeer("s3"), hub.JoinRequest{MaxPeers: 6, Welcome: welcome("s3")}); err != hub.ErrHubClosed {
		t.Fatalf("join after shutdown: %v, want ErrHubClosed", err)
	}
	if a == b {
		return
	}
	// The other hub's peers stay connected and see the closed peer leave.
	// Its connection leaves as it closes, which the hub shut down takes.
	a.Leave("r", "s1")
	q.Expect(t, "peer-left", "s1")
	if code := q.ClosedWith(); code != 0 {
		t.Fatalf("the other server's peer was closed with %d", code)
	}
	Join(t, b, "r", NewPeer("s4"), 6)
	q.Expect(t, "peer-joined", "s4")
}
