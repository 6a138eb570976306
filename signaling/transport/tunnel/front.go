package tunnel

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// A client that resumes on another server than the one holding its session
// (the home) is served through a tunnel of the hub (see Tunnels): the
// server it reached (the front) relays its connection's frames to the
// home's session and the session's frames back, unchanged. The session,
// its order, replay and limits stay where they were; the front is a pipe.

// Wait bounds how long a front waits for the home's answer.
const Wait = 5 * time.Second

// Request is what a front asks the home.
type Request struct {
	Room    string `json:"room"`
	Token   string `json:"token"`
	LastSeq uint64 `json:"last_seq"`
	Host    string `json:"host"` // for the ICE servers of the welcome
}

// Front is a transport that relays a session living on another server:
// the home's frames go out as they are, and the home may end it.
type Front interface {
	// Relay queues a frame of the home's, already sequenced.
	Relay(frame []byte)
	// EndFront ends the connection after the frames queued.
	EndFront(code int, reason string)
	// Forward makes the transport a front whose peer's frames (if it reads
	// any) go through the link's tunnel.
	Forward(link *Link)
}

// Client is a front's connection to its client, as Link.Pass answers it.
type Client interface {
	// Say queues an error frame of the front's own.
	Say(frame []byte)
	// Fail sends a fatal error frame, then the close.
	Fail(code, msg string, closeCode int)
}

// Link is a front's side of the tunnel that carries its client's
// frames to the session's home, and the limits they are held to before
// they cross: one client must not be able to flood the link between the
// servers, which every tunnel and room spanning them shares.
type Link struct {
	tun  hub.Tunnel
	cfg  *session.Config // the front's handler's limits and metrics
	gate session.Gate
}

// Pass forwards a frame of the client's to the home, within the limits.
// What they refuse is answered here; a fatal refusal ends the session at
// the home too.
func (f *Link) Pass(c Client, text bool, data []byte) {
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
		c.Fail(v.Code, v.Message, v.CloseCode)
	default:
		c.Say(wire.Error(v.Code, v.Message))
	}
}

// Close ends the tunnel, telling the home why (see homeEnd.Closed).
func (f *Link) Close(code int, reason string) { f.tun.Close(code, reason) }

// Resume carries a resume to the server holding the session, when the hub
// of cfg spans servers and the session is not here: it reports whether c
// is now the session's front. host is the client's request's, for the ICE
// servers of the welcome.
func Resume(cfg *session.Config, c Front, room, token, lastSeq, host string) bool {
	tunnels, ok := cfg.Hub.(hub.Tunnels)
	n, valid := session.ParseLastSeq(lastSeq)
	id, _, _ := strings.Cut(token, ".")
	if !ok || !valid || id == "" || len(token) > session.MaxSessionTokenLen {
		return false
	}
	if s, _ := cfg.Sessions.Lookup(room, token); s != nil {
		return false // here, and it could not resume
	}
	req := wire.Encode(Request{Room: room, Token: token, LastSeq: n, Host: host})
	front := &frontEnd{c: c, answered: make(chan bool, 1)}
	tun, err := tunnels.OpenTunnel(room, id, req, front)
	if err != nil {
		return false
	}
	t := time.NewTimer(Wait)
	defer t.Stop()
	select {
	case ok = <-front.answered:
	case <-t.C:
	}
	if !front.settle(ok) {
		tun.Close(wire.CloseNormal, wire.CodeResumeFailed)
		return false
	}
	c.Forward(&Link{tun: tun, cfg: cfg})
	return true
}

// frontEnd receives the home's frames for a front connection.
type frontEnd struct {
	c        Front
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
	f.c.Relay(frame)
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
		if code == 0 || code == wire.CloseAbnormal {
			code = wire.CloseGoingAway // the home is gone: the client resumes again
		}
		f.c.EndFront(code, reason)
	}
}
