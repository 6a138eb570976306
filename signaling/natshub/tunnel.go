package natshub

import (
	"context"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/caddy-webrtc/caddy-webrtc/signaling"
)

// Tunnels carry a resumed client's frames between the server it reached
// (the front) and the one holding its session (the home), on the node
// subjects the hubs already use, so they keep their order and wait out a
// NATS outage like any frame between servers. A tunnel whose far server
// falls silent for node_timeout is closed with 1006.

// Headers and kinds of tunnel messages.
const (
	hdrTunnel = "U" // the tunnel's id, chosen by the front
	hdrNode   = "N" // the sending node
	hdrCode   = "C" // a close code
	hdrReason = "W" // a close reason

	kindTunnelOpen  = "to"
	kindTunnelFrame = "tf"
	kindTunnelClose = "tc"
)

var _ signaling.Tunnels = (*Hub)(nil)

// tunnelTable holds this node's ends of tunnels, by far node and id.
type tunnelTable struct {
	mu     sync.Mutex
	accept func([]byte, signaling.Tunnel) signaling.TunnelEnd
	ends   map[string]*tunnelEnd
}

// tunnelEnd is this node's end of a tunnel: Send and Close go to the far
// node; what the far node sends goes to recv.
type tunnelEnd struct {
	h    *Hub
	node string // the far node
	id   string
	mu   sync.Mutex
	recv signaling.TunnelEnd
	done bool
}

func tunnelKey(node, id string) string { return node + "/" + id }

// AcceptTunnels implements signaling.Tunnels.
func (h *Hub) AcceptTunnels(accept func([]byte, signaling.Tunnel) signaling.TunnelEnd) {
	h.tunnels.mu.Lock()
	defer h.tunnels.mu.Unlock()
	h.tunnels.accept = accept
}

// OpenTunnel implements signaling.Tunnels.
func (h *Hub) OpenTunnel(room, id string, request []byte, front signaling.TunnelEnd) (signaling.Tunnel, error) {
	if !h.ready.Load() || !h.nodes.isConnected() {
		return nil, ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	st, _, err := h.load(ctx, h.roomKey(room))
	if err != nil {
		return nil, err
	}
	i := st.index(id)
	if i < 0 || st.Members[i].Node == h.node || h.nodes.dead(st.Members[i].Node) {
		return nil, signaling.ErrUnknownPeer
	}
	e := &tunnelEnd{h: h, node: st.Members[i].Node, id: randomID(), recv: front}
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
	delete(t.ends, tunnelKey(e.node, e.id))
}

func (t *tunnelTable) get(node, id string) *tunnelEnd {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ends[tunnelKey(node, id)]
}

// count is the number of open tunnel ends, for tests.
func (t *tunnelTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.ends)
}

func (e *tunnelEnd) msg(kind string, data []byte) *nats.Msg {
	m := nats.NewMsg(e.h.nodeSubject(e.node))
	m.Header.Set(hdrKind, kind)
	m.Header.Set(hdrTunnel, e.id)
	m.Header.Set(hdrNode, e.h.node)
	m.Data = data
	return m
}

// Send implements signaling.Tunnel.
func (e *tunnelEnd) Send(frame []byte) {
	e.mu.Lock()
	done := e.done
	e.mu.Unlock()
	if !done {
		// A frame that cannot wait (more than maxOutbox for an unreachable
		// server) is lost with the tunnel: its client resumes again.
		if e.h.nodes.send(e.node, e.msg(kindTunnelFrame, frame)) != nil {
			e.Close(1006, "")
		}
	}
}

// Close implements signaling.Tunnel.
func (e *tunnelEnd) Close(code int, reason string) {
	if !e.finish() {
		return
	}
	m := e.msg(kindTunnelClose, nil)
	m.Header.Set(hdrCode, strconv.Itoa(code))
	m.Header.Set(hdrReason, reason)
	_ = e.h.nodes.send(e.node, m)
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

// onTunnelMsg handles a tunnel message from another node, in the order
// that node sent them.
func (h *Hub) onTunnelMsg(m *nats.Msg) {
	node, id := m.Header.Get(hdrNode), m.Header.Get(hdrTunnel)
	switch m.Header.Get(hdrKind) {
	case kindTunnelOpen:
		h.tunnels.mu.Lock()
		accept := h.tunnels.accept
		h.tunnels.mu.Unlock()
		e := &tunnelEnd{h: h, node: node, id: id}
		h.tunnels.add(e)
		if accept == nil {
			e.Close(signaling.CloseNormal, signaling.CodeResumeFailed)
			return
		}
		// Set before frames of the front can arrive: they are handled
		// after this message.
		recv := accept(m.Data, e)
		e.mu.Lock()
		e.recv = recv
		e.mu.Unlock()
		if recv == nil {
			e.finish()
		}
	case kindTunnelFrame:
		if e := h.tunnels.get(node, id); e != nil && e.receiver() != nil {
			e.receiver().Frame(m.Data)
		}
	case kindTunnelClose:
		if e := h.tunnels.get(node, id); e != nil && e.finish() && e.receiver() != nil {
			code, _ := strconv.Atoi(m.Header.Get(hdrCode))
			e.receiver().Closed(code, m.Header.Get(hdrReason))
		}
	}
}

func (e *tunnelEnd) receiver() signaling.TunnelEnd {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.recv
}

// sweepTunnels closes the tunnels to nodes that fell silent.
func (h *Hub) sweepTunnels() {
	h.tunnels.mu.Lock()
	var gone []*tunnelEnd
	for _, e := range h.tunnels.ends {
		if h.nodes.dead(e.node) {
			gone = append(gone, e)
		}
	}
	h.tunnels.mu.Unlock()
	for _, e := range gone {
		if e.finish() && e.receiver() != nil {
			e.receiver().Closed(1006, "server gone")
		}
	}
}

// closeTunnels closes every tunnel end, at shutdown.
func (h *Hub) closeTunnels() {
	h.tunnels.mu.Lock()
	all := make([]*tunnelEnd, 0, len(h.tunnels.ends))
	for _, e := range h.tunnels.ends {
		all = append(all, e)
	}
	h.tunnels.mu.Unlock()
	for _, e := range all {
		e.Close(signaling.CloseGoingAway, "server shutting down")
	}
}
