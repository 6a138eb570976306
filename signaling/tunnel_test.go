package signaling

import (
	"fmt"
	"net/url"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/internal/wstest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/tunnel"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// A client that resumes on another server than its session's home (the
// front) is carried by a tunnel. The only hub with tunnels needs NATS, so
// two handlers of this process, each with its own hub name and memory hub,
// stand for the two servers, and pipeHub carries the front's tunnels to
// the home's tunnel.Accept in process, keeping the hub.Tunnel contract.

// pipeHub is a memory hub whose tunnels reach accept.
type pipeHub struct {
	*hub.MemoryHub
	accept func(request []byte, back hub.Tunnel) hub.TunnelEnd
}

// OpenTunnel implements hub.Tunnels.
func (p *pipeHub) OpenTunnel(_, _ string, request []byte, front hub.TunnelEnd) (hub.Tunnel, error) {
	tp := &tunnelPipe{dirs: [2]*pipeDir{newPipeDir(), newPipeDir()}} // to the front, to the home
	tp.dirs[0].start(front)
	if end := p.accept(request, &pipeSide{p: tp, out: 0}); end != nil {
		tp.dirs[1].start(end)
	}
	return &pipeSide{p: tp, out: 1}, nil
}

// AcceptTunnels implements hub.Tunnels.
func (p *pipeHub) AcceptTunnels(func([]byte, hub.Tunnel) hub.TunnelEnd) {}

// tunnelPipe is one tunnel: closed by whichever side closes first.
type tunnelPipe struct {
	mu     sync.Mutex
	closed bool
	dirs   [2]*pipeDir
}

// pipeSide is one side's hub.Tunnel, sending on dirs[out]: what it sends
// goes out in order, its close after them, and nothing after the tunnel
// closed.
type pipeSide struct {
	p   *tunnelPipe
	out int
}

func (s *pipeSide) Send(frame []byte) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if !s.p.closed {
		s.p.dirs[s.out].push(pipeEvent{frame: frame})
	}
}

func (s *pipeSide) Close(code int, reason string) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if !s.p.closed {
		s.p.closed = true
		s.p.dirs[s.out].push(pipeEvent{end: true, closed: true, code: code, reason: reason})
		// The closing side is not told: its direction just ends.
		s.p.dirs[1-s.out].push(pipeEvent{end: true})
	}
}

// pipeEvent is a frame, or the close.
type pipeEvent struct {
	frame  []byte
	end    bool // the last event of its direction
	closed bool // the far end is told: Closed
	code   int
	reason string
}

// pipeDir delivers one direction's events to its end, in order, on a
// goroutine of its own, as a link would.
type pipeDir struct {
	mu     sync.Mutex
	cond   *sync.Cond
	events []pipeEvent
}

func newPipeDir() *pipeDir {
	d := &pipeDir{}
	d.cond = sync.NewCond(&d.mu)
	return d
}

func (d *pipeDir) start(end hub.TunnelEnd) {
	go func() {
		for {
			d.mu.Lock()
			for len(d.events) == 0 {
				d.cond.Wait()
			}
			e := d.events[0]
			d.events = d.events[1:]
			d.mu.Unlock()
			switch {
			case e.closed:
				end.Closed(e.code, e.reason)
			case !e.end:
				end.Frame(e.frame)
			}
			if e.end {
				return
			}
		}
	}()
}

func (d *pipeDir) push(e pipeEvent) {
	d.mu.Lock()
	d.events = append(d.events, e)
	d.mu.Unlock()
	d.cond.Signal()
}

// tunneled sets up a home server where a and b share a room, a lost, and
// a front server on which a resumed: it returns b and a's new connection,
// through the front, and their ids, after a's resumed welcome.
func tunneled(t *testing.T) (home *Handler, b, a *websocket.Conn, aID, bID string) {
	t.Helper()
	homeURL, home := testServer(t, withResume)
	frontURL, _ := testServer(t, func(h *Handler) {
		withResume(h)
		h.Hub += ":front" // so that the session is not found there
		h.hub = &pipeHub{MemoryHub: hub.NewMemoryHub(), accept: tunnel.Accept(home.state.sessions)}
	})
	old, aw := wstest.Join(t, homeURL, "tunnel")
	b, bw := wstest.Join(t, homeURL, "tunnel")
	f := wstest.NextFrame(t, old) // b's peer-joined
	_ = old.NetConn().Close()
	a = wstest.Dial(t, frontURL, fmt.Sprintf("room=tunnel&resume=%s&last_seq=%d", url.QueryEscape(aw.Resume), f.Seq), nil)
	if w := wstest.NextFrame(t, a); w.Type != wire.TypeWelcome || !w.Resumed || w.ID != aw.ID {
		t.Fatalf("through the front: %+v, want a resumed welcome for %s", w, aw.ID)
	}
	return home, b, a, aw.ID, bw.ID
}

// Through a tunnel, the client's frames reach its session on the home in
// the order sent, and the session's frames reach the client in order,
// numbered by the home.
func TestATunnelCarriesFramesBothWaysInOrder(t *testing.T) {
	const n = 200
	_, b, a, aID, bID := tunneled(t)
	for i := 1; i <= n; i++ {
		wstest.SendSignal(t, a, bID, i)
		wstest.SendSignal(t, b, aID, i)
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i + 1
	}
	wstest.ExpectSignals(t, b, aID, want...)
	wstest.ExpectSignals(t, a, bID, want...)
}

// The client leaving through the front ends its session on the home: the
// room sees it leave.
func TestAFrontClosingTellsTheHome(t *testing.T) {
	_, b, a, aID, _ := tunneled(t)
	if err := a.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(wire.CloseNormal, "")); err != nil {
		t.Fatal(err)
	}
	if f := wstest.NextFrame(t, b); f.Type != wire.TypePeerLeft || f.ID != aID {
		t.Fatalf("b got %+v, want a's peer-left", f)
	}
}

// The home ending the session (here: its hub shutting down, 1001) closes
// the client's connection to the front with the same code.
func TestTheHomeClosingTellsTheFront(t *testing.T) {
	home, b, a, _, bID := tunneled(t)
	// b leaves first: a shutdown ends b's session too, and its peer-left
	// may reach a before a's own close.
	if err := b.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(wire.CloseNormal, "")); err != nil {
		t.Fatal(err)
	}
	if f := wstest.NextFrame(t, a); f.Type != wire.TypePeerLeft || f.ID != bID {
		t.Fatalf("a got %+v, want b's peer-left", f)
	}
	home.hub.Shutdown()
	if code := wstest.CloseCode(t, a); code != wire.CloseGoingAway {
		t.Fatalf("the client's connection to the front closed with %d, want %d", code, wire.CloseGoingAway)
	}
}
