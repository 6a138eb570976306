package hubtest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// Cases of the optional interfaces of a hub whose rooms span servers. In
// each, b is the home (it holds the session, a peer of its own) and a the
// front, which holds no peer: the server a client reaches may be one that
// nobody joined yet, such as one just started.

// tunnelsOf returns the pair's Tunnels, skipping the case when they have
// none.
func tunnelsOf(t *testing.T, a, b hub.Hub) (front, home hub.Tunnels) {
	t.Helper()
	front, okA := a.(hub.Tunnels)
	home, okB := b.(hub.Tunnels)
	if !okA || !okB {
		t.Skipf("%T does not implement hub.Tunnels: its rooms do not span servers, so the server a client resumes on is the one holding its session", a)
	}
	return front, home
}

// End records what a tunnel's far end sends it. With a Gate, each Frame
// waits until the gate is closed (a session whose frame waits for a slow
// room-mate).
type End struct {
	Gate chan struct{}

	mu     sync.Mutex
	frames []string
	closes []closeCall
	late   int // frames handed after Closed
}

type closeCall struct {
	code   int
	reason string
}

// Frame implements hub.TunnelEnd.
func (e *End) Frame(b []byte) {
	if e.Gate != nil {
		<-e.Gate
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.frames = append(e.frames, string(b))
	if len(e.closes) > 0 {
		e.late++
	}
}

// Closed implements hub.TunnelEnd.
func (e *End) Closed(code int, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closes = append(e.closes, closeCall{code, reason})
}

// Frames returns the frames received so far.
func (e *End) Frames() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.frames)
}

// ClosedWith returns the code of the one Closed call so far, or 0 for
// none; it fails the test on a second call or a frame after it.
func (e *End) ClosedWith(t *testing.T) int {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.closes) > 1 || e.late > 0 {
		t.Fatalf("Closed %+v, then %d frames", e.closes, e.late)
	}
	if len(e.closes) == 0 {
		return 0
	}
	return e.closes[0].code
}

// closedOnce waits for the one Closed call, with code and reason, after
// want frames and before any other.
func (e *End) closedOnce(t *testing.T, who string, code int, reason string, want []string) {
	t.Helper()
	Eventually(t, who+" told of the close", func() bool { return e.ClosedWith(t) != 0 })
	e.mu.Lock()
	defer e.mu.Unlock()
	if w := (closeCall{code, reason}); e.closes[0] != w {
		t.Fatalf("%s: Closed %+v, want %+v", who, e.closes[0], w)
	}
	inOrder(t, who, e.frames, want)
}

// inOrder checks that who got the frames want, in order.
func inOrder(t *testing.T, who string, got, want []string) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("%s: frame %d is %q, want %q", who, i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: got %d frames, want %d", who, len(got), len(want))
	}
}

// notClosed checks that e is not told of a close for a while.
func (e *End) notClosed(t *testing.T, who string) {
	t.Helper()
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		if code := e.ClosedWith(t); code != 0 {
			t.Fatalf("%s: Closed with %d for its own side's close", who, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tunnel is a tunnel the front a opened to the session of peer "home" on b.
type tunnel struct {
	tun, back   hub.Tunnel
	front, home *End
}

// request is a resume request: opaque to the hub, so not text.
var request = []byte("resume\n\x00\xffhome")

// openTunnel opens a tunnel from a to peer "home" of room r on b; home
// serves it with accept, or, when nil, with an End.
func openTunnel(t *testing.T, a, b hub.Hub, accept func([]byte, hub.Tunnel) hub.TunnelEnd) *tunnel {
	t.Helper()
	front, home := tunnelsOf(t, a, b)
	Join(t, b, "r", NewPeer("home"), 6)
	c := &tunnel{front: &End{}, home: &End{}}
	backs := make(chan hub.Tunnel, 1)
	home.AcceptTunnels(func(req []byte, back hub.Tunnel) hub.TunnelEnd {
		if !bytes.Equal(req, request) {
			t.Errorf("the home got request %q, want %q", req, request)
		}
		backs <- back
		if accept != nil {
			return accept(req, back)
		}
		return c.home
	})
	front.AcceptTunnels(func([]byte, hub.Tunnel) hub.TunnelEnd {
		t.Error("the front was asked to serve its own tunnel")
		return nil
	})
	tun, err := front.OpenTunnel("r", "home", request, c.front)
	if err != nil {
		t.Fatalf("opening a tunnel from a server without peers: %v", err)
	}
	c.tun = tun
	select {
	case c.back = <-backs:
	case <-time.After(Wait):
		t.Fatalf("the home did not accept the tunnel within %s", Wait)
	}
	return c
}

// numbered returns n frames named after prefix and their number.
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	return out
}

func tunnelFrames(t *testing.T, a, b hub.Hub) {
	c := openTunnel(t, a, b, nil)
	const n = 300
	toHome, toFront := numbered("f", n), numbered("h", n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, f := range toFront {
			c.back.Send([]byte(f))
		}
	}()
	for _, f := range toHome {
		c.tun.Send([]byte(f))
	}
	<-done
	Eventually(t, "every frame across", func() bool {
		return len(c.home.Frames()) >= n && len(c.front.Frames()) >= n
	})
	inOrder(t, "the home", c.home.Frames(), toHome)
	inOrder(t, "the front", c.front.Frames(), toFront)
	c.tun.Close(4001, "front done")
	c.home.closedOnce(t, "the home", 4001, "front done", toHome)
	c.front.notClosed(t, "the front")
}

func tunnelClosedByHome(t *testing.T, a, b hub.Hub) {
	c := openTunnel(t, a, b, nil)
	toFront := numbered("h", 100)
	for _, f := range toFront {
		c.back.Send([]byte(f))
	}
	c.back.Close(4002, "home done")
	c.front.closedOnce(t, "the front", 4002, "home done", toFront)
	c.home.notClosed(t, "the home")
	// Both ends closed: what either does now reaches nobody.
	c.tun.Send([]byte("late"))
	c.tun.Close(4003, "late")
	c.home.notClosed(t, "the home")
	if got := c.home.Frames(); len(got) != 0 {
		t.Fatalf("the home got %q after its close", got)
	}
}

func tunnelRefused(t *testing.T, a, b hub.Hub) {
	c := openTunnel(t, a, b, func(_ []byte, back hub.Tunnel) hub.TunnelEnd {
		back.Close(wire.CloseNormal, wire.CodeResumeFailed)
		return nil
	})
	c.front.closedOnce(t, "the front", wire.CloseNormal, wire.CodeResumeFailed, nil)
	c.tun.Send([]byte("nobody reads this"))
	c.tun.Close(wire.CloseNormal, "")
}

func tunnelUnknown(t *testing.T, a, b hub.Hub) {
	front, home := tunnelsOf(t, a, b)
	Join(t, b, "r", NewPeer("home"), 6)
	for _, c := range []struct {
		what     string
		tunnels  hub.Tunnels
		room, id string
	}{
		{"a peer not in the room", front, "r", "nobody"},
		{"a room nobody is in", front, "elsewhere", "home"},
		{"a peer of the server opening", home, "r", "home"},
	} {
		end := &End{}
		tun, err := c.tunnels.OpenTunnel(c.room, c.id, request, end)
		if !errors.Is(err, hub.ErrUnknownPeer) {
			if tun != nil {
				tun.Close(wire.CloseNormal, "")
			}
			t.Fatalf("a tunnel to %s: %v, want ErrUnknownPeer", c.what, err)
		}
	}
}

func posts(t *testing.T, a, b hub.Hub) {
	pa, okA := a.(hub.Posts)
	pb, okB := b.(hub.Posts)
	if !okA || !okB {
		t.Skipf("%T does not implement hub.Posts: its rooms do not span servers, so a post reaches the server holding its session", a)
	}
	// Each server answers for its own sessions, named by a prefix, and
	// records what it answered.
	var mu sync.Mutex
	answered := make(map[string][]string)
	answer := func(server, prefix string) func([]byte) ([]byte, bool) {
		return func(post []byte) ([]byte, bool) {
			if !bytes.HasPrefix(post, []byte(prefix)) {
				return nil, false
			}
			mu.Lock()
			defer mu.Unlock()
			answered[server] = append(answered[server], string(post))
			return append([]byte(server+" answers "), post...), true
		}
	}
	pa.AcceptPosts(answer("a", "sa."))
	pb.AcceptPosts(answer("b", "sb."))
	forward := func(p hub.Posts, post, want string) {
		t.Helper()
		got, err := p.ForwardPost([]byte(post))
		if err != nil || string(got) != want {
			t.Fatalf("posting %q: %q, %v; want %q", post, got, err, want)
		}
	}
	// b holds a session; a, which holds none, forwards its posts.
	Join(t, b, "r", NewPeer("sb"), 6)
	sent := numbered("sb.", 20)
	for _, p := range sent {
		forward(pa, p, "b answers "+p)
	}
	if _, err := pa.ForwardPost([]byte("nobody.0")); err == nil {
		t.Fatal("a post for a session nobody holds was answered")
	}
	// Now a holds one too, and b forwards to it.
	Join(t, a, "r", NewPeer("sa"), 6)
	forward(pb, "sa.0", "a answers sa.0")
	forward(pa, "sb.last", "b answers sb.last")
	mu.Lock()
	defer mu.Unlock()
	if want := append(sent, "sb.last"); !slices.Equal(answered["b"], want) {
		t.Fatalf("b answered %q, want %q in order", answered["b"], want)
	}
	if want := []string{"sa.0"}; !slices.Equal(answered["a"], want) {
		t.Fatalf("a answered %q, want %q", answered["a"], want)
	}
}
