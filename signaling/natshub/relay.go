package natshub

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/natshub/link"
)

// Deliver implements hub.Hub. Frames for peers of another node go
// on that node's subject, from this node's one connection, in order.
func (h *Hub) Deliver(name, from, to string, frame []byte) error {
	v := h.view(h.roomKey(name))
	if v == nil {
		return hub.ErrNotMember
	}
	v.mu.Lock()
	sender := v.locals[from]
	if sender == nil || sender.left {
		v.mu.Unlock()
		return hub.ErrNotMember
	}
	locals, nodes, err := h.route(v, from, to)
	if err != nil {
		v.mu.Unlock()
		return err
	}
	// Taken under the room lock, before removal can see the sender gone.
	sender.relaying.RLock()
	defer sender.relaying.RUnlock()
	v.mu.Unlock()
	for _, node := range nodes {
		m := nats.NewMsg(h.nodeSubject(node))
		m.Header.Set(hdrKind, kindFrame)
		m.Header.Set(hdrRoom, v.key)
		m.Header.Set(hdrFrom, from)
		if to != "" {
			m.Header.Set(hdrTo, to)
		}
		m.Data = frame
		if e := h.nodes.send(node, m); e != nil {
			err = e
		}
	}
	for _, l := range locals {
		l.peer.Send(frame)
	}
	return err
}

// route finds the local peers and the other nodes a frame goes to; the
// caller holds v.mu.
func (h *Hub) route(v *roomView, from, to string) ([]*local, []string, error) {
	if to == "" {
		var remote []member
		for _, m := range v.members {
			if m.Node != h.node {
				remote = append(remote, m)
			}
		}
		return v.welcomedLocals(from), nodesOf(remote), nil
	}
	for _, m := range v.members {
		if m.ID != to {
			continue
		}
		if m.Node != h.node {
			return nil, []string{m.Node}, nil
		}
		if l := v.locals[to]; l != nil && l.welcomed {
			return []*local{l}, nil, nil
		}
	}
	return nil, nil, hub.ErrUnknownPeer
}

// onNodeMsg handles what other nodes send this one, one message at a time
// in the order each node sent them: acknowledgements at once, messages
// through the link from their node (package link), which drops duplicates
// and holds early ones until the gap is filled.
func (h *Hub) onNodeMsg(m *nats.Msg) {
	s, ok := link.Parse(m)
	if !ok {
		h.handleNodeMsg(m) // not sequenced
		return
	}
	h.nodes.heard(s.Node)
	if m.Header.Get(hdrKind) == kindAck {
		h.nodes.onAck(s.Node, link.Ack{Link: s.Link, Seq: s.Seq})
		return
	}
	ms, a, ack := h.inbound.Receive(s, m)
	for _, m := range ms {
		h.handleNodeMsg(m)
	}
	if ack {
		h.sendAck(s.Node, a)
	}
}

// sendAck acknowledges a, of a link from node.
func (h *Hub) sendAck(node string, a link.Ack) {
	m := nats.NewMsg(h.nodeSubject(node))
	m.Header.Set(hdrKind, kindAck)
	link.SetAck(m, h.node, a)
	_ = h.nc.PublishMsg(m) // a lost acknowledgement is covered by the next
}

// handleNodeMsg handles one message of another node, in its order. It
// runs on the dispatcher, which must wait for nothing a peer or a tunnel
// does: what it has for a local peer goes to the peer's feed, a tunnel's
// message to its end's inbox.
func (h *Hub) handleNodeMsg(m *nats.Msg) {
	if m.Header.Get(hdrTunnel) != "" {
		h.onTunnelMsg(m)
		return
	}
	h.remoteRelay.RLock()
	defer h.remoteRelay.RUnlock()
	v := h.view(m.Header.Get(hdrRoom))
	if v == nil {
		return // no peer of this node is in the room any more
	}
	switch m.Header.Get(hdrKind) {
	case kindFrame:
		h.onFrame(v, m)
	case kindSnapshot:
		h.onSnapshot(v, m)
	}
}

// onFrame relays a remote peer's frame to local peers, unless the sender
// has left by now, so nothing follows its peer-left.
func (h *Hub) onFrame(v *roomView, m *nats.Msg) {
	from, to := m.Header.Get(hdrFrom), m.Header.Get(hdrTo)
	v.mu.Lock()
	var targets []*local
	for _, mem := range v.members {
		if mem.ID == from && mem.Node != h.node {
			if to == "" {
				targets = v.welcomedLocals(from)
			} else if l := v.locals[to]; l != nil && !l.left && l.welcomed {
				targets = []*local{l}
			}
			break
		}
	}
	v.mu.Unlock()
	for _, l := range targets {
		l.relay(m.Data)
	}
}

// onSnapshot moves the view to a newer state another node wrote; a local
// peer whose seat a join there took is disconnected (refresh).
func (h *Hub) onSnapshot(v *roomView, m *nats.Msg) {
	rev, err := strconv.ParseUint(m.Header.Get(hdrRev), 10, 64)
	var st roomState
	if err == nil {
		err = json.Unmarshal(m.Data, &st)
	}
	if err != nil {
		h.logger.Error("unreadable room snapshot from another server", zap.Error(err))
		return
	}
	v.mu.Lock()
	ev := h.apply(v, rev, st)
	v.mu.Unlock()
	dispatch(ev)
}

// reconcile makes the bucket hold exactly this node's current members of
// the room: after an outage it puts back those others dropped, and it
// removes those that left meanwhile.
func (h *Hub) reconcile(v *roomView) {
	ctx, cancel := opContext()
	defer cancel()
	v.mu.Lock()
	ev, err := h.reconcileLocked(ctx, v)
	v.mu.Unlock()
	if err != nil {
		h.logger.Warn("re-asserting room members through NATS", zap.Error(err))
		return
	}
	h.deliver(ev)
}

func (h *Hub) reconcileLocked(ctx context.Context, v *roomView) (events, error) {
	res, err := h.update(ctx, v.key, func(st *roomState) (bool, error) {
		st.Room = v.name
		want, _ := v.effective(*st, h.node)
		changed := len(want) != len(st.Members)
		for i := 0; !changed && i < len(want); i++ {
			changed = want[i] != st.Members[i]
		}
		st.Members = want
		return changed, nil
	})
	if err != nil || !res.changed {
		return events{}, err
	}
	h.publishSnapshot(v.key, res)
	return h.apply(v, res.rev, res.new), nil
}
