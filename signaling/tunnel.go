package signaling

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// A client that resumes on another server than the one holding its session
// (the home) is served through a tunnel of the hub (see Tunnels): the
// server it reached (the front) relays its connection's frames to the
// home's session and the session's frames back, unchanged. The session,
// its order, replay and limits stay where they were; the front is a pipe.

// tunnelWait bounds how long a front waits for the home's answer.
const tunnelWait = 5 * time.Second

// tunnelRequest is what a front asks the home.
type tunnelRequest struct {
	Room    string `json:"room"`
	Token   string `json:"token"`
	LastSeq uint64 `json:"last_seq"`
	Host    string `json:"host"` // for the ICE servers of the welcome
}

// front is a transport that relays a session living on another server:
// the home's frames go out as they are, and the home may end it.
type front interface {
	// relay queues a frame of the home's, already sequenced.
	relay(frame []byte)
	// endFront ends the connection after the frames queued.
	endFront(code int, reason string)
	// forward makes the transport a front whose peer's frames (if it reads
	// any) go through the link's tunnel.
	forward(link *frontLink)
}

// frontLink is a front's side of the tunnel that carries its client's
// frames to the session's home, and the limits they are held to before
// they cross: one client must not be able to flood the link between the
// servers, which every tunnel and room spanning them shares.
type frontLink struct {
	tun  hub.Tunnel
	cfg  *session.Config // the front's handler's limits and metrics
	gate session.Gate
}

// pass forwards a frame of the client's to the home, within the limits.
// What they refuse is answered here; a fatal refusal ends the session at
// the home too.
func (f *frontLink) pass(c *wsConn, text bool, data []byte) {
	v := f.gate.Admit(len(data), f.cfg)
	if v.Code == "" && !text {
		v = session.BinaryRefused
	}
	switch {
	case v.Code == "":
		// Copied: the tunnel may hold it while the home is unreachable.
		f.tun.Send(slices.Clone(data))
	case v.CloseCode != 0:
		f.tun.Close(v.CloseCode, v.Code)
		c.fail(v.Code, v.Message, v.CloseCode)
	default:
		c.say(wire.Error(v.Code, v.Message))
	}
}

// resumeRemote carries a resume to the server holding the session, when
// the hub spans servers and the session is not here.
func (h *Handler) resumeRemote(c front, room, token, lastSeq string, r *http.Request) bool {
	tunnels, ok := h.hub.(hub.Tunnels)
	n, valid := session.ParseLastSeq(lastSeq)
	id, _, _ := strings.Cut(token, ".")
	if !ok || !valid || id == "" || len(token) > session.MaxSessionTokenLen {
		return false
	}
	if s, _ := h.state.sessions.Lookup(room, token); s != nil {
		return false // here, and it could not resume
	}
	req := wire.Encode(tunnelRequest{Room: room, Token: token, LastSeq: n, Host: r.Host})
	front := &frontEnd{c: c, answered: make(chan bool, 1)}
	tun, err := tunnels.OpenTunnel(room, id, req, front)
	if err != nil {
		return false
	}
	t := time.NewTimer(tunnelWait)
	defer t.Stop()
	select {
	case ok = <-front.answered:
	case <-t.C:
	}
	if !front.settle(ok) {
		tun.Close(wire.CloseNormal, wire.CodeResumeFailed)
		return false
	}
	c.forward(&frontLink{tun: tun, cfg: h.sessCfg})
	h.metrics.Resume("resumed")
	h.logger.Debug("peer resumed through another server", zap.String("room", room))
	return true
}

// frontEnd receives the home's frames for a front connection.
type frontEnd struct {
	c        front
	answered chan bool // the first answer: true for a frame, false for a close

	mu    sync.Mutex
	state int // 0 waiting, 1 resumed, 2 given up
}

// settle records the outcome of the wait; it reports whether the resume
// stands.
func (f *frontEnd) settle(ok bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state == 0 {
		f.state = 2
		if ok {
			f.state = 1
		}
	}
	return f.state == 1
}

// Frame implements TunnelEnd: the home's frames go out as they are.
func (f *frontEnd) Frame(frame []byte) {
	f.mu.Lock()
	first := f.state == 0
	if first {
		f.state = 1
	}
	gone := f.state == 2
	f.mu.Unlock()
	if gone {
		return
	}
	if first {
		f.answered <- true
	}
	f.c.relay(frame)
}

// Closed implements TunnelEnd.
func (f *frontEnd) Closed(code int, reason string) {
	f.mu.Lock()
	state := f.state
	if state == 0 {
		f.state = 2
	}
	f.mu.Unlock()
	switch state {
	case 0:
		f.answered <- false // the home could not resume it: join afresh
	case 1:
		if code == 0 || code == 1006 {
			code = wire.CloseGoingAway // the home is gone: the client resumes again
		}
		f.c.endFront(code, reason)
	}
}

// acceptTunnel serves, on the home, tunnels fronts open to the sessions of
// sessions.
func acceptTunnel(sessions *session.Registry) func([]byte, hub.Tunnel) hub.TunnelEnd {
	return func(request []byte, back hub.Tunnel) hub.TunnelEnd {
		var req tunnelRequest
		if json.Unmarshal(request, &req) != nil {
			back.Close(wire.CloseNormal, wire.CodeResumeFailed)
			return nil
		}
		s, gen := sessions.Lookup(req.Room, req.Token)
		if s == nil {
			back.Close(wire.CloseNormal, wire.CodeResumeFailed)
			return nil
		}
		t := &tunnelTransport{s: s, back: back}
		w := s.ResumeFrom(t, gen, req.LastSeq, &http.Request{Host: req.Host})
		if w == nil {
			back.Close(wire.CloseNormal, wire.CodeResumeFailed)
			return nil
		}
		t.start(w)
		return t
	}
}

// tunnelTransport is a session's transport on its home while its client
// is connected to a front: frames go through the tunnel, sequenced.
type tunnelTransport struct {
	s    *session.Session
	back hub.Tunnel

	// The preface, the locks' order, the batch step and the close state;
	// the fields below are guarded by its mu too.
	session.WriterCore
	writing   bool // a pump is running
	started   bool // the welcome is queued: frames may go
	farClosed bool // the front closed: nothing more goes back
}

var (
	_ session.Transport = (*tunnelTransport)(nil)
	_ hub.TunnelEnd     = (*tunnelTransport)(nil)
)

// start sends the welcome, then the frames waiting.
func (t *tunnelTransport) start(welcome []byte) {
	t.Mu.Lock()
	defer t.Mu.Unlock()
	t.QueueLocked(welcome)
	t.started = true
	t.wakeLocked()
}

// Wake implements transport.
func (t *tunnelTransport) Wake() {
	t.Mu.Lock()
	defer t.Mu.Unlock()
	t.wakeLocked()
}

// Send implements transport.
func (t *tunnelTransport) Send() { t.Wake() }

func (t *tunnelTransport) wakeLocked() {
	if t.writing || !t.started {
		return
	}
	t.writing = true
	go t.pump()
}

// Close implements transport.
func (t *tunnelTransport) Close(code int, reason string, flush bool) {
	t.CloseOnce(code, reason, flush, t.Wake) // a pump sees it out
}

// Displace implements transport.
func (t *tunnelTransport) Displace() { t.DisplaceBy(t) }

// pump sends frames through the tunnel while there are any, and the close
// once the transport is closing.
func (t *tunnelTransport) pump() {
	var stack [64]session.Frame
	for {
		frames, closing := t.next(stack[:0])
		for _, f := range frames {
			t.back.Send(f.Sequenced(nil))
			t.s.Metrics().FrameOut(f.B)
		}
		if closing {
			if t.s.IsEnded() {
				t.s.Leave()
			}
			t.Mu.Lock()
			far := t.farClosed
			t.Mu.Unlock()
			if !far {
				t.back.Close(t.CloseCode, t.CloseReason)
			}
			return
		}
		if len(frames) == 0 {
			return
		}
	}
}

// next takes the frames to send; on a closing transport, only those a
// flush is to send, and closing is then true.
func (t *tunnelTransport) next(batch []session.Frame) ([]session.Frame, bool) {
	t.LockWith(t.s)
	defer t.UnlockWith(t.s)
	closing := t.Closing()
	if closing && !t.FlushOnClose {
		return batch, true
	}
	// All the own frames at once, not a batch's worth: each goes in a
	// send of its own, so a batch bounds nothing here, and a close that
	// comes meanwhile does not cut the welcome's followers short.
	batch, _ = t.TakeLocked(t.s, t, batch, true)
	if len(batch) == 0 && !closing {
		t.writing = false
	}
	return batch, closing && len(batch) == 0
}

// Frame implements TunnelEnd: a frame the client sent through the front.
func (t *tunnelTransport) Frame(frame []byte) { t.s.Reply(t.s.Receive(t, frame, true)) }

// Closed implements TunnelEnd: the client's connection to the front ended
// (1000: it said goodbye; 1006: it was lost), the front is gone (1001,
// 1006), or the front ended it for something the client did (a protocol
// error, a frame over the limits), which ends the session at once as it
// would here.
func (t *tunnelTransport) Closed(code int, reason string) {
	t.Mu.Lock()
	t.farClosed = true
	t.Mu.Unlock()
	switch code {
	case wire.CloseNormal, wire.CloseGoingAway, websocket.CloseAbnormalClosure, 0:
		t.s.Lost(t, code == wire.CloseNormal)
	default:
		if t.s.CarriedBy(t) {
			t.s.End(code, reason, false)
		}
	}
	t.Close(code, "", false)
}
