package hubtest

import (
	"slices"
	"sync"
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
)

// WatchingPeer is a Peer that records what a hub tells it of its own
// membership (hub.Watcher).
type WatchingPeer struct {
	*Peer
	mu   sync.Mutex
	told []string
}

// NewWatchingPeer returns a watching peer with the given id.
func NewWatchingPeer(id string) *WatchingPeer { return &WatchingPeer{Peer: NewPeer(id)} }

var _ hub.Watcher = (*WatchingPeer)(nil)

// Joined implements hub.Watcher.
func (p *WatchingPeer) Joined(started bool) { p.record("joined", started, "started") }

// Left implements hub.Watcher.
func (p *WatchingPeer) Left(finished bool) { p.record("left", finished, "finished") }

func (p *WatchingPeer) record(what string, flag bool, name string) {
	if flag {
		what += " " + name
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.told = append(p.told, what)
}

// Told returns what the hub told the peer, in order.
func (p *WatchingPeer) Told() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.told)
}

// watcher checks hub.Watcher: the first member in hears its join started
// the room, the last one out that its leave finished it, each exactly
// once, from whichever server; a peer whose seat is taken over hears no
// Left; a second leave tells nothing.
func watcher(t *testing.T, a, b hub.Hub) {
	w1, w2, w3 := NewWatchingPeer("w1"), NewWatchingPeer("w2"), NewWatchingPeer("w3")
	join := func(h hub.Hub, p *WatchingPeer, replace string) {
		t.Helper()
		if _, err := h.Join("rw", p, hub.JoinRequest{MaxPeers: 6, Replace: replace, Welcome: welcome(p.ID())}); err != nil {
			t.Fatalf("%s joining: %v", p.ID(), err)
		}
		p.Expect(t, "welcome", p.ID())
	}
	join(a, w1, "")
	join(b, w2, "")
	w1.Expect(t, "peer-joined", "w2")
	join(a, w3, "w2") // takes w2's seat
	a.Leave("rw", "w1")
	a.Leave("rw", "w1")
	a.Leave("rw", "w3")
	want := map[*WatchingPeer][]string{
		w1: {"joined started", "left"},
		w2: {"joined"},
		w3: {"joined", "left finished"},
	}
	for p, told := range want {
		if got := p.Told(); !slices.Equal(got, told) {
			t.Errorf("%s was told %q, want %q", p.ID(), got, told)
		}
	}
}
