package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// fakePeer records frames; it stands in for a connection in hub unit tests
// (the WebSocket side is covered end to end in caddytest).
type fakePeer struct {
	id     string
	mu     sync.Mutex
	frames []string
	closed int
}

func (p *fakePeer) ID() string { return p.id }
func (p *fakePeer) Send(f []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frames = append(p.frames, string(f))
	return true
}
func (p *fakePeer) TrySend(f []byte) bool { return p.Send(f) }
func (p *fakePeer) Close(code int, _ string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = code
}
func (p *fakePeer) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.frames
	p.frames = nil
	return f
}

// join is Join without a seat to take over.
func join(h *MemoryHub, room string, p Peer, maxPeers int, welcome func([]wire.PeerInfo) []byte) error {
	_, err := h.Join(room, p, JoinRequest{MaxPeers: maxPeers, Welcome: welcome})
	return err
}

func welcomeFor(id, room string) func([]wire.PeerInfo) []byte {
	return func(m []wire.PeerInfo) []byte {
		return wire.Encode(wire.Welcome{Type: wire.TypeWelcome, ID: id, Room: room, Peers: m})
	}
}

func TestMemoryHubMembership(t *testing.T) {
	h := NewMemoryHub()
	a, b, c := &fakePeer{id: "a"}, &fakePeer{id: "b"}, &fakePeer{id: "c"}
	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"a joins", func() error { return join(h, "r", a, 2, welcomeFor("a", "r")) }, nil},
		{"a again", func() error { return join(h, "r", &fakePeer{id: "a"}, 2, welcomeFor("a", "r")) }, ErrDuplicateID},
		{"b joins", func() error { return join(h, "r", b, 2, welcomeFor("b", "r")) }, nil},
		{"c refused", func() error { return join(h, "r", c, 2, welcomeFor("c", "r")) }, ErrRoomFull},
		{"c elsewhere", func() error { return join(h, "s", c, 2, welcomeFor("c", "s")) }, nil},
		{"to unknown", func() error { return h.Deliver("r", "a", "c", []byte("x")) }, ErrUnknownPeer},
		{"to b", func() error { return h.Deliver("r", "a", "b", []byte("x")) }, nil},
		{"no room", func() error { return h.Deliver("zz", "a", "b", []byte("x")) }, ErrNotMember},
		{"not a member", func() error { return h.Deliver("r", "c", "a", []byte("x")) }, ErrNotMember},
	}
	for _, s := range steps {
		if err := s.do(); !errors.Is(err, s.want) {
			t.Fatalf("%s: got %v, want %v", s.name, err, s.want)
		}
	}
	if got := a.take(); len(got) != 2 || got[1] != `{"type":"peer-joined","id":"b"}` {
		t.Fatalf("a got %q", got)
	}
	if got := b.take(); len(got) != 2 || got[0] != `{"type":"welcome","id":"b","room":"r","peers":[{"id":"a"}]}` || got[1] != "x" {
		t.Fatalf("b got %q", got)
	}
	if st := h.Stats(); st.Rooms != 2 || st.Peers != 3 || st.LocalPeers != 3 {
		t.Fatalf("stats = %+v", st)
	}
	h.Leave("r", "a")
	h.Leave("r", "a") // twice is harmless
	if got := b.take(); len(got) != 1 || got[0] != `{"type":"peer-left","id":"a"}` {
		t.Fatalf("b got %q", got)
	}
	h.Leave("r", "b")
	h.Leave("s", "c")
	if st := h.Stats(); st.Rooms != 0 || st.Peers != 0 {
		t.Fatalf("after everyone left: %+v", st)
	}
}

func TestMemoryHubShutdown(t *testing.T) {
	h := NewMemoryHub()
	a := &fakePeer{id: "a"}
	if err := join(h, "r", a, 6, welcomeFor("a", "r")); err != nil {
		t.Fatal(err)
	}
	h.Shutdown()
	if a.closed != wire.CloseGoingAway {
		t.Fatalf("close code %d, want %d", a.closed, wire.CloseGoingAway)
	}
	if err := join(h, "r", &fakePeer{id: "b"}, 6, welcomeFor("b", "r")); !errors.Is(err, ErrHubClosed) {
		t.Fatalf("join after shutdown: %v", err)
	}
}

func TestMemoryHubBroadcastSkipsSender(t *testing.T) {
	h := NewMemoryHub()
	peers := make([]*fakePeer, 4)
	for i := range peers {
		peers[i] = &fakePeer{id: fmt.Sprint(i)}
		if err := join(h, "r", peers[i], 6, welcomeFor(peers[i].id, "r")); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range peers {
		p.take()
	}
	if err := h.Deliver("r", "0", "", []byte("all")); err != nil {
		t.Fatal(err)
	}
	for i, p := range peers {
		got := p.take()
		if want := i != 0; (len(got) == 1 && got[0] == "all") != want {
			t.Fatalf("peer %d got %q", i, got)
		}
	}
}

// BenchmarkDeliver measures relaying one signal between two peers of a
// room while other rooms are busy too.
func BenchmarkDeliver(b *testing.B) {
	h := NewMemoryHub()
	for r := range 1000 {
		for p := range 2 {
			id := fmt.Sprint(p)
			if err := join(h, fmt.Sprint(r), nopPeer(id), 6, welcomeFor(id, "")); err != nil {
				b.Fatal(err)
			}
		}
	}
	frame := wire.Encode(wire.Outbound{Type: wire.TypeSignal, From: "0", Data: json.RawMessage(`{"candidate":"x"}`)})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := h.Deliver(fmt.Sprint(i%1000), "0", "1", frame); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

type nopPeer string

func (p nopPeer) ID() string        { return string(p) }
func (nopPeer) Send([]byte) bool    { return true }
func (nopPeer) TrySend([]byte) bool { return true }
func (nopPeer) Close(int, string)   {}
