package hub

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedPeer, once armed, holds back the next frame it is sent until
// released, and records frames in the order their sends complete.
type gatedPeer struct {
	fakePeer
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGatedPeer(id string) *gatedPeer {
	return &gatedPeer{fakePeer: fakePeer{id: id}, entered: make(chan struct{}), release: make(chan struct{})}
}

func (p *gatedPeer) Send(f []byte) bool {
	first := false
	if p.armed.Load() {
		p.once.Do(func() { first = true })
	}
	if first {
		close(p.entered)
		<-p.release
	}
	return p.fakePeer.Send(f)
}

// A frame still on its way when its sender leaves reaches the others before
// the sender's peer-left, never after it.
func TestMemoryHubNothingAfterPeerLeft(t *testing.T) {
	h := NewMemoryHub()
	s, x := &fakePeer{id: "s"}, newGatedPeer("x")
	if err := join(h, "r", s, 6, welcomeFor("s", "r")); err != nil {
		t.Fatal(err)
	}
	if err := join(h, "r", x, 6, welcomeFor("x", "r")); err != nil {
		t.Fatal(err)
	}
	x.take()
	x.armed.Store(true)
	delivered := make(chan error)
	go func() { delivered <- h.Deliver("r", "s", "x", []byte("signal")) }()
	<-x.entered
	left := make(chan struct{})
	go func() { h.Leave("r", "s"); close(left) }()
	waitFor(t, "s removed from the room", func() bool { return h.Stats().Peers == 1 })
	// Leave must now wait for the signal in flight: peer-left may not
	// overtake it.
	deadline := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(deadline) {
		if len(x.snapshot()) > 0 {
			t.Fatalf("x got %q while the signal was still on its way", x.snapshot())
		}
	}
	close(x.release)
	if err := <-delivered; err != nil {
		t.Fatal(err)
	}
	<-left
	if got := x.take(); !slices.Equal(got, []string{"signal", `{"type":"peer-left","id":"s"}`}) {
		t.Fatalf("x got %q", got)
	}
	if err := h.Deliver("r", "s", "x", []byte("late")); err != ErrNotMember {
		t.Fatalf("delivering after leaving: %v, want ErrNotMember", err)
	}
}

// A session's new connection takes its stale connection's seat in a full
// room: the others see peer-left for the old id, then peer-joined.
func TestMemoryHubReplace(t *testing.T) {
	h := NewMemoryHub()
	a, b := &fakePeer{id: "a"}, &fakePeer{id: "b"}
	for _, p := range []*fakePeer{a, b} {
		if err := join(h, "r", p, 2, welcomeFor(p.id, "r")); err != nil {
			t.Fatal(err)
		}
	}
	a.take()
	b.take()
	if err := join(h, "r", &fakePeer{id: "c"}, 2, welcomeFor("c", "r")); err != ErrRoomFull {
		t.Fatalf("third peer: %v, want ErrRoomFull", err)
	}
	b2 := &fakePeer{id: "b2"}
	replaced, err := h.Join("r", b2, JoinRequest{MaxPeers: 2, Replace: "b", Welcome: welcomeFor("b2", "r")})
	if err != nil || replaced != Peer(b) {
		t.Fatalf("replacing b: %v, %v", replaced, err)
	}
	if got := a.take(); !slices.Equal(got, []string{`{"type":"peer-left","id":"b"}`, `{"type":"peer-joined","id":"b2"}`}) {
		t.Fatalf("a got %q", got)
	}
	if got := b2.take(); len(got) != 1 || got[0] != `{"type":"welcome","id":"b2","room":"r","peers":[{"id":"a"}]}` {
		t.Fatalf("b2 got %q", got)
	}
	h.Leave("r", "b") // the old connection's own leave is a no-op now
	if got := a.take(); len(got) != 0 {
		t.Fatalf("a got %q after the replaced peer left", got)
	}
	// Replacing someone who is not there is a plain join, and respects the cap.
	if _, err := h.Join("r", &fakePeer{id: "d"}, JoinRequest{MaxPeers: 2, Replace: "gone", Welcome: welcomeFor("d", "r")}); err != ErrRoomFull {
		t.Fatalf("replacing an absent peer: %v, want ErrRoomFull", err)
	}
}

func (p *fakePeer) snapshot() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.frames)
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
