package natshub

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// Tunnels carry a resumed client's frames between the server it reached
// (the front) and the one holding its session (the home), on the node
// subjects the hubs already use, so they keep their order and wait out a
// NATS outage like any frame between servers.
//
// Each end hands what the far end sends to its receiver from an inbox of
// its own (inbox.go), not from the dispatcher: on the home, a frame is
// the session's to handle, and it may wait for a slow room-mate; an open
// may wait for NATS. An end that fails (a send the link refuses, an inbox
// that overflows, a far end silent for node_timeout or that forgot the
// tunnel) tells its receiver Closed(1006) and the far end, best effort,
// with a close. Each end sends a keep-alive when it sent nothing for
// node_timeout/3; an end that does not know the tunnel answers with a
// close.

// Headers and kinds of tunnel messages.
const (
	hdrTunnel = "U" // the tunnel's id, chosen by the front
	hdrNode   = "N" // the sending node
	hdrCode   = "C" // a close code
	hdrReason = "W" // a close reason

	kindTunnelOpen  = "to"
	kindTunnelFrame = "tf"
	kindTunnelClose = "tc"
	kindTunnelAlive = "tk" // a keep-alive
)

// closeAbnormal is the close code of a tunnel that failed (RFC 6455's for
// a connection lost without a close frame).
const closeAbnormal = 1006

// Bounds of a tunnel end's inbox. A session holds at most 256 frames and
// 1 MiB for its peer, and a sender waits at most 5 s for a slow reader;
// four times that is room for a burst (100 frames at the default limits)
// and the rest of such a wait, in either direction. More is a flood the
// receiver cannot take: the tunnel fails.
const (
	maxTunnelInbox      = 1024
	maxTunnelInboxBytes = 4 << 20
)

var _ hub.Tunnels = (*Hub)(nil)

// tunnelTable holds this node's ends of tunnels, by far node and id.
type tunnelTable struct {
	mu         sync.Mutex
	accept     func([]byte, hub.Tunnel) hub.TunnelEnd
	answerPost func([]byte) ([]byte, bool)
	ends       map[string]*tunnelEnd
}

// tunnelEnd is this node's end of a tunnel: Send and Close go to the far
// node; what the far node sends goes to recv, through in.
type tunnelEnd struct {
	h    *Hub
	node string // the far node
	id   string
	in   inbox

	mu    sync.Mutex
	recv  hub.TunnelEnd
	done  bool
	heard time.Time // when the far end last sent anything
	sent  time.Time // when this end last sent the far end anything
}

func newTunnelEnd(h *Hub, node, id string, recv hub.TunnelEnd) *tunnelEnd {
	now := time.Now()
	return &tunnelEnd{
		h: h, node: node, id: id,
		in:   inbox{maxJobs: maxTunnelInbox, maxBytes: maxTunnelInboxBytes},
		recv: recv, heard: now, sent: now,
	}
}

func tunnelKey(node, id string) string { return node + "/" + id }

// AcceptTunnels implements hub.Tunnels.
func (h *Hub) AcceptTunnels(accept func([]byte, hub.Tunnel) hub.TunnelEnd) {
	h.tunnels.mu.Lock()
	defer h.tunnels.mu.Unlock()
	h.tunnels.accept = accept
}

// OpenTunnel implements hub.Tunnels.
func (h *Hub) OpenTunnel(room, id string, request []byte, front hub.TunnelEnd) (hub.Tunnel, error) {
	if err := h.connected(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	st, _, err := h.load(ctx, h.roomKey(room))
	if err != nil {
		return nil, err
	}
	i := st.index(id)
	if i < 0 || st.Members[i].Node == h.node || h.nodes.dead(st.Members[i].Node) {
		return nil, hub.ErrUnknownPeer
	}
	e := newTunnelEnd(h, st.Members[i].Node, randomID(), front)
	h.tunnels.add(e)
	if err := h.nodes.send(e.node, e.msg(kindTunnelOpen, request)); err != nil {
		h.tunnels.remove(e)
		return nil, err
	}
	return e, nil
}

func (t *tunnelTable) add(e *tunnelEnd) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ends == nil {
		t.ends = make(map[string]*tunnelEnd)
	}
	t.ends[tunnelKey(e.node, e.id)] = e
}

func (t *tunnelTable) remove(e *tunnelEnd) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ends[tunnelKey(e.node, e.id)] == e {
		delete(t.ends, tunnelKey(e.node, e.id))
	}
}

func (t *tunnelTable) get(node, id string) *tunnelEnd {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ends[tunnelKey(node, id)]
}

func (t *tunnelTable) list() []*tunnelEnd {
	t.mu.Lock()
	defer t.mu.Unlock()
	all := make([]*tunnelEnd, 0, len(t.ends))
	for _, e := range t.ends {
		all = append(all, e)
	}
	return all
}

func (e *tunnelEnd) msg(kind string, data []byte) *nats.Msg {
	return tunnelMsg(e.h, e.node, e.id, kind, data)
}

func tunnelMsg(h *Hub, node, id, kind string, data []byte) *nats.Msg {
	m := nats.NewMsg(h.nodeSubject(node))
	m.Header.Set(hdrKind, kind)
	m.Header.Set(hdrTunnel, id)
	m.Header.Set(hdrNode, h.node)
	m.Data = data
	return m
}

// closeMsg is the close of tunnel id, for node.
func closeMsg(h *Hub, node, id string, code int, reason string) *nats.Msg {
	m := tunnelMsg(h, node, id, kindTunnelClose, nil)
	m.Header.Set(hdrCode, strconv.Itoa(code))
	m.Header.Set(hdrReason, reason)
	return m
}

// Send implements hub.Tunnel. A frame the link refuses (the far
// server is unreachable, or too much waits for it) fails the tunnel: its
// client resumes again.
func (e *tunnelEnd) Send(frame []byte) {
	if !e.isDone() && !e.send(e.msg(kindTunnelFrame, frame)) {
		e.fail("tunnel to another server overflowed")
	}
}

// send sends m to the far node; it reports false when the link refuses it.
func (e *tunnelEnd) send(m *nats.Msg) bool {
	if e.h.nodes.send(e.node, m) != nil {
		return false
	}
	e.mu.Lock()
	e.sent = time.Now()
	e.mu.Unlock()
	return true
}

// Close implements hub.Tunnel.
func (e *tunnelEnd) Close(code int, reason string) {
	if e.finish() {
		e.tellFar(code, reason)
	}
}

// tellFar sends the far end the close. A close is small and once per end,
// so it goes even on a link at its bounds, to be published as soon as
// the far node can hear.
func (e *tunnelEnd) tellFar(code int, reason string) {
	e.h.nodes.sendLast(e.node, closeMsg(e.h, e.node, e.id, code, reason))
}

// fail ends the tunnel from this end: the far end is told, best effort,
// and the receiver gets Closed(1006) after what it was already handed.
func (e *tunnelEnd) fail(reason string) {
	if !e.finish() {
		return
	}
	e.tellFar(closeAbnormal, reason)
	e.closed(closeAbnormal, reason)
}

// closed tells the receiver, from the inbox, after what it was handed.
func (e *tunnelEnd) closed(code int, reason string) {
	e.in.pushAnyway(func() {
		if r := e.receiver(); r != nil {
			r.Closed(code, reason)
		}
	})
}

// finish marks the end done and forgets it; it reports false when it was
// done already.
func (e *tunnelEnd) finish() bool {
	e.mu.Lock()
	was := e.done
	e.done = true
	e.mu.Unlock()
	e.h.tunnels.remove(e)
	return !was
}

func (e *tunnelEnd) isDone() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.done
}

func (e *tunnelEnd) receiver() hub.TunnelEnd {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.recv
}

// onTunnelMsg takes, on the dispatcher, a tunnel message from another
// node, in the order that node sent them, and queues it on its end's
// inbox.
func (h *Hub) onTunnelMsg(m *nats.Msg) {
	node, id, kind := m.Header.Get(hdrNode), m.Header.Get(hdrTunnel), m.Header.Get(hdrKind)
	if kind == kindTunnelOpen {
		if h.tunnels.get(node, id) == nil {
			e := newTunnelEnd(h, node, id, nil)
			h.tunnels.add(e) // before the front's next messages are taken
			e.in.pushAnyway(func() { h.accept(e, m.Data) })
		}
		return
	}
	e := h.tunnels.get(node, id)
	if e == nil {
		if kind != kindTunnelClose { // a close is never answered
			h.refuseTunnel(node, id)
		}
		return
	}
	e.hear()
	switch kind {
	case kindTunnelFrame:
		if !e.in.push(func() { e.frame(m.Data) }, len(m.Data)) {
			e.fail("tunnel from another server overflowed")
		}
	case kindTunnelClose:
		if e.finish() {
			code, _ := strconv.Atoi(m.Header.Get(hdrCode))
			e.closed(code, m.Header.Get(hdrReason))
		}
	}
}

// refuseTunnel answers a message of a tunnel this node does not know (it
// closed it, or forgot it) with a close, so the far end does not wait for
// node_timeout to notice. Best effort: the next keep-alive asks again.
func (h *Hub) refuseTunnel(node, id string) {
	_ = h.nodes.send(node, closeMsg(h, node, id, closeAbnormal, "unknown tunnel"))
}

// accept serves, on the home, a tunnel a front opened, from its inbox.
func (h *Hub) accept(e *tunnelEnd, request []byte) {
	h.tunnels.mu.Lock()
	accept := h.tunnels.accept
	h.tunnels.mu.Unlock()
	if accept == nil {
		e.Close(wire.CloseNormal, wire.CodeResumeFailed)
		return
	}
	// Set before the front's frames are handed on: they are queued after
	// this job.
	recv := accept(request, e)
	e.mu.Lock()
	e.recv = recv
	e.mu.Unlock()
	if recv == nil {
		e.finish()
	}
}

// frame hands the receiver a frame, from the inbox.
func (e *tunnelEnd) frame(b []byte) {
	if r := e.receiver(); r != nil {
		r.Frame(b)
	}
}

func (e *tunnelEnd) hear() {
	e.mu.Lock()
	e.heard = time.Now()
	e.mu.Unlock()
}

// tunnelKeepAlive is how long an end may send nothing before it sends a
// keep-alive, in node timeouts' thirds (as heartbeats go).
func (h *Hub) tunnelKeepAlive() time.Duration { return h.cfg.nodeTimeout / 3 }

// checkTunnels sends keep-alives on the tunnels idle for a while, and
// fails those whose far end was silent for node_timeout (its server died
// or cannot be reached, or the end forgot it and its answer was lost).
func (h *Hub) checkTunnels() {
	now := time.Now()
	for _, e := range h.tunnels.list() {
		e.mu.Lock()
		silent, idle := now.Sub(e.heard), now.Sub(e.sent)
		e.mu.Unlock()
		switch {
		case silent > h.cfg.nodeTimeout:
			e.fail("server gone")
		case idle >= h.tunnelKeepAlive():
			if !e.send(e.msg(kindTunnelAlive, nil)) {
				e.fail("tunnel to another server overflowed")
			}
		}
	}
}

// closeTunnels closes every tunnel end, at shutdown.
func (h *Hub) closeTunnels() {
	for _, e := range h.tunnels.list() {
		e.Close(wire.CloseGoingAway, "server shutting down")
	}
}
