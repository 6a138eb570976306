package tunnel

import (
	"encoding/json"
	"net/http"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// Accept serves, on the home, tunnels fronts open to the sessions of
// sessions.
func Accept(sessions *session.Registry) func([]byte, hub.Tunnel) hub.TunnelEnd {
	return func(request []byte, back hub.Tunnel) hub.TunnelEnd {
		var req Request
		if json.Unmarshal(request, &req) != nil {
			back.Close(wire.CloseNormal, wire.CodeResumeFailed)
			return nil
		}
		s, gen := sessions.Lookup(req.Room, req.Token)
		if s == nil {
			back.Close(wire.CloseNormal, wire.CodeResumeFailed)
			return nil
		}
		t := &homeEnd{s: s, back: back}
		w := s.ResumeFrom(t, gen, req.LastSeq, &http.Request{Host: req.Host})
		if w == nil {
			back.Close(wire.CloseNormal, wire.CodeResumeFailed)
			return nil
		}
		t.start(w)
		return t
	}
}

// homeEnd is a session's transport on its home while its client
// is connected to a front: frames go through the tunnel, sequenced.
type homeEnd struct {
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
	_ session.Transport = (*homeEnd)(nil)
	_ hub.TunnelEnd     = (*homeEnd)(nil)
)

// start sends the welcome, then the frames waiting.
func (t *homeEnd) start(welcome []byte) {
	t.Mu.Lock()
	defer t.Mu.Unlock()
	t.QueueLocked(welcome)
	t.started = true
	t.wakeLocked()
}

// Wake implements transport.
func (t *homeEnd) Wake() {
	t.Mu.Lock()
	defer t.Mu.Unlock()
	t.wakeLocked()
}

// Send implements transport.
func (t *homeEnd) Send() { t.Wake() }

func (t *homeEnd) wakeLocked() {
	if t.writing || !t.started {
		return
	}
	t.writing = true
	go t.pump()
}

// Close implements transport.
func (t *homeEnd) Close(code int, reason string, flush bool) {
	t.CloseOnce(code, reason, flush, t.Wake) // a pump sees it out
}

// Displace implements transport.
func (t *homeEnd) Displace() { t.DisplaceBy(t) }

// pump sends frames through the tunnel while there are any, and the close
// once the transport is closing.
func (t *homeEnd) pump() {
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
func (t *homeEnd) next(batch []session.Frame) ([]session.Frame, bool) {
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
func (t *homeEnd) Frame(frame []byte) { t.s.Reply(t.s.Receive(t, frame, true)) }

// Closed implements TunnelEnd: the client's connection to the front ended
// (1000: it said goodbye; 1006: it was lost), the front is gone (1001,
// 1006), or the front ended it for something the client did (a protocol
// error, a frame over the limits), which ends the session at once as it
// would here.
func (t *homeEnd) Closed(code int, reason string) {
	t.Mu.Lock()
	t.farClosed = true
	t.Mu.Unlock()
	switch code {
	case wire.CloseNormal, wire.CloseGoingAway, wire.CloseAbnormal, 0:
		t.s.Lost(t, code == wire.CloseNormal)
	default:
		if t.s.CarriedBy(t) {
			t.s.End(code, reason, false)
		}
	}
	t.Close(code, "", false)
}
