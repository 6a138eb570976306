package natshub

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub/hubtest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/natshub/link"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// tunnelCase is a tunnel from hs[0] (the front) to hs[1] (the home),
// which holds peer "p" of room "r".
type tunnelCase struct {
	hs          []*Hub
	tun, back   hub.Tunnel
	front, home *hubtest.End
}

func openTunnel(t *testing.T, home *hubtest.End) *tunnelCase {
	t.Helper()
	srv := startNATS(t)
	c := &tunnelCase{hs: newHubs(t, srv.URL(), 2), front: &hubtest.End{}, home: home}
	hubtest.Join(t, c.hs[1], "r", hubtest.NewPeer("p"), 6)
	hubtest.Join(t, c.hs[0], "r", hubtest.NewPeer("q"), 6)
	backs := make(chan hub.Tunnel, 1)
	c.hs[1].AcceptTunnels(func(req []byte, back hub.Tunnel) hub.TunnelEnd {
		if string(req) != "resume p" {
			t.Errorf("request %q", req)
		}
		backs <- back
		return home
	})
	tun, err := c.hs[0].OpenTunnel("r", "p", []byte("resume p"), c.front)
	if err != nil {
		t.Fatal(err)
	}
	c.tun = tun
	select {
	case c.back = <-backs:
	case <-time.After(5 * time.Second):
		t.Fatal("the home did not accept the tunnel")
	}
	return c
}

// gone waits until neither hub keeps an end of the tunnel.
func (c *tunnelCase) gone(t *testing.T) {
	t.Helper()
	eventually(t, withinWait, "both tunnel ends forgotten", func() bool {
		return c.hs[0].tunnels.count() == 0 && c.hs[1].tunnels.count() == 0
	})
}

// limitLink makes h's link to node refuse every message but a last one.
func limitLink(h *Hub, node string) {
	h.nodes.mu.Lock()
	defer h.nodes.mu.Unlock()
	h.nodes.link(node).Limit(0, link.MaxPendingBytes)
}

// A tunnel whose frame the link refuses ends at both ends: the front's
// connection is closed (its client resumes) and the home's session goes
// away, instead of both living on, deaf.
func TestATunnelWhoseSendFailsClosesBothEnds(t *testing.T) {
	c := openTunnel(t, &hubtest.End{})
	c.tun.Send([]byte("to the home"))
	c.back.Send([]byte("to the front"))
	eventually(t, withinWait, "a frame each way", func() bool {
		return len(c.home.Frames()) == 1 && len(c.front.Frames()) == 1
	})
	limitLink(c.hs[0], c.hs[1].node)
	c.tun.Send([]byte("refused"))
	eventually(t, withinWait, "the front's receiver closed", func() bool { return c.front.ClosedWith(t) != 0 })
	eventually(t, withinWait, "the home's receiver closed", func() bool { return c.home.ClosedWith(t) != 0 })
	if f, h := c.front.ClosedWith(t), c.home.ClosedWith(t); f != 1006 || h != 1006 {
		t.Fatalf("closed with %d at the front, %d at the home; want 1006", f, h)
	}
	c.tun.Send([]byte("after the end"))
	c.tun.Close(wire.CloseNormal, "")
	c.gone(t)
	if got := c.home.Frames(); !slices.Equal(got, []string{"to the home"}) {
		t.Fatalf("the home got %q", got)
	}
}

// An end whose far end forgot the tunnel (its close was lost) learns it
// from the answer to its keep-alive, well within node_timeout; an end
// whose far server died notices within node_timeout and a fraction.
func TestATunnelNoticesAFarEndGone(t *testing.T) {
	t.Run("forgotten by the home", func(t *testing.T) {
		c := openTunnel(t, &hubtest.End{})
		start := time.Now()
		c.hs[1].tunnels.remove(c.back.(*tunnelEnd))
		eventually(t, testNodeTimeout, "the front's receiver closed", func() bool { return c.front.ClosedWith(t) == 1006 })
		t.Logf("noticed after %s", time.Since(start).Round(time.Millisecond))
		c.gone(t)
	})
	t.Run("forgotten by the front", func(t *testing.T) {
		c := openTunnel(t, &hubtest.End{})
		c.hs[0].tunnels.remove(c.tun.(*tunnelEnd))
		eventually(t, testNodeTimeout, "the home's receiver closed", func() bool { return c.home.ClosedWith(t) == 1006 })
		c.gone(t)
	})
	t.Run("the home's server died", func(t *testing.T) {
		c := openTunnel(t, &hubtest.End{})
		start := time.Now()
		c.hs[1].crash()
		eventually(t, testNodeTimeout+testNodeTimeout/3+time.Second, "the front's receiver closed", func() bool {
			return c.front.ClosedWith(t) == 1006
		})
		if d := time.Since(start); d < testNodeTimeout {
			t.Fatalf("closed after %s, before node_timeout", d)
		}
		t.Logf("noticed after %s", time.Since(start).Round(time.Millisecond))
	})
}

// A receiver that takes its time (a session waiting for a slow room-mate)
// holds up neither the dispatcher nor the order of its tunnel's frames.
func TestATunnelsInboxKeepsOrderWithoutHoldingUpTheDispatcher(t *testing.T) {
	home := &hubtest.End{Gate: make(chan struct{})}
	c := openTunnel(t, home)
	x, y := hubtest.NewPeer("x"), hubtest.NewPeer("y")
	hubtest.Join(t, c.hs[0], "fast", x, 6)
	hubtest.Join(t, c.hs[1], "fast", y, 6)
	x.Expect(t, "peer-joined", "y")
	const n = 500
	var want []string
	for i := range n {
		want = append(want, fmt.Sprint(i))
		c.tun.Send([]byte(want[i]))
	}
	if err := c.hs[0].Deliver("fast", "x", "y", []byte(`{"type":"signal","from":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if _, ok := y.NextWithin(withinWait); !ok {
		t.Fatalf("a frame of a room did not arrive within %s while a tunnel's receiver waited", withinWait)
	}
	close(home.Gate)
	eventually(t, withinWait, "the tunnel's frames", func() bool { return len(home.Frames()) == n })
	if got := home.Frames(); !slices.Equal(got, want) {
		t.Fatalf("frames out of order: %v", got)
	}
	if c.home.ClosedWith(t) != 0 || c.front.ClosedWith(t) != 0 {
		t.Fatal("the tunnel closed")
	}
}

// A receiver that takes nothing more while its far end sends on makes its
// inbox overflow: the tunnel closes at both ends, the receiver having had
// what its inbox held, in order.
func TestATunnelWhoseInboxOverflowsCloses(t *testing.T) {
	home := &hubtest.End{Gate: make(chan struct{})}
	c := openTunnel(t, home)
	for i := range maxTunnelInbox + 10 {
		c.tun.Send(fmt.Append(nil, i))
	}
	eventually(t, withinWait, "the front's receiver closed", func() bool { return c.front.ClosedWith(t) == 1006 })
	close(home.Gate)
	eventually(t, withinWait, "the home's receiver closed", func() bool { return c.home.ClosedWith(t) == 1006 })
	got := home.Frames()
	if len(got) < maxTunnelInbox || len(got) > maxTunnelInbox+1 {
		t.Fatalf("the home got %d frames, want the %d its inbox held and the one it was handling", len(got), maxTunnelInbox)
	}
	for i, f := range got {
		if f != fmt.Sprint(i) {
			t.Fatalf("frame %d is %s", i, f)
		}
	}
	c.gone(t)
}

// count is the number of open tunnel ends.
func (t *tunnelTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.ends)
}
