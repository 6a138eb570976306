package natshub

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling"
)

// Leave implements signaling.Hub. Leaving twice, or for a peer of another
// node, does nothing.
func (h *Hub) Leave(name, id string) {
	v := h.view(h.roomKey(name))
	if v == nil {
		return
	}
	v.mu.Lock()
	l := v.locals[id]
	if l == nil {
		v.mu.Unlock()
		return
	}
	wasMember := !l.left
	l.left = true // from now on Deliver from it fails
	v.mu.Unlock()
	// Outside the room lock: a frame on its way may wait for a slow peer.
	l.retire()
	v.mu.Lock()
	delete(v.locals, id)
	var ev events
	if wasMember {
		ev = h.leaveLocked(v, id)
	}
	v.mu.Unlock()
	h.deliver(ev)
	h.release(v, false)
}

// leaveLocked removes a local member from the bucket and tells everyone;
// the caller holds v.mu. While NATS is away, only the local peers are
// told now; reconcile removes the member from the bucket on reconnect.
func (h *Hub) leaveLocked(v *roomView, id string) events {
	var ev events
	if h.ready.Load() && h.nodes.isConnected() {
		ctx, cancel := opContext()
		res, err := h.update(ctx, v.key, func(st *roomState) (bool, error) {
			i := st.index(id)
			if i < 0 || st.Members[i].Node != h.node {
				return false, nil
			}
			st.Members = append(st.Members[:i], st.Members[i+1:]...)
			return true, nil
		})
		cancel()
		if err == nil && res.changed {
			ev = h.apply(v, res.rev, res.new.Members)
			h.publishSnapshot(v.key, res, "")
		} else if err != nil {
			h.logger.Warn("leaving a room through NATS; retrying on reconnect", zap.Error(err))
			h.trigger()
		}
	} else {
		h.trigger()
	}
	more := h.refresh(v, v.members) // in case the bucket was not changed
	ev.frames = append(ev.frames, more.frames...)
	if ev.targets == nil {
		ev.targets = more.targets
	}
	ev.retire = append(ev.retire, more.retire...)
	ev.remote = ev.remote || more.remote
	return ev
}

// Deliver implements signaling.Hub. Frames for peers of another node go
// on that node's subject, from this node's one connection, in order.
func (h *Hub) Deliver(name, from, to string, frame []byte) error {
	v := h.view(h.roomKey(name))
	if v == nil {
		return signaling.ErrNotMember
	}
	v.mu.Lock()
	sender := v.locals[from]
	if sender == nil || sender.left {
		v.mu.Unlock()
		return signaling.ErrNotMember
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
	for _, p := range locals {
		p.Send(frame)
	}
	return err
}

// route finds the local peers and the other nodes a frame goes to; the
// caller holds v.mu.
func (h *Hub) route(v *roomView, from, to string) ([]signaling.Peer, []string, error) {
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
			return []signaling.Peer{l.peer}, nil, nil
		}
	}
	return nil, nil, signaling.ErrUnknownPeer
}

// onNodeMsg handles what other nodes send this one, one message at a time
// in the order each node sent them: acknowledgements at once, messages
// through the link from their node (reliable.go), which drops duplicates
// and holds early ones until the gap is filled.
func (h *Hub) onNodeMsg(m *nats.Msg) {
	s, ok := parseSeq(m.Header.Get(hdrSeq))
	if !ok {
		h.handleNodeMsg(m) // not sequenced
		return
	}
	if m.Header.Get(hdrKind) == kindAck {
		h.nodes.onAck(s.node, s.link, s.seq)
		return
	}
	ms, link, ackSeq, ack := h.inbound.receive(s, m)
	for _, m := range ms {
		h.handleNodeMsg(m)
	}
	if ack {
		h.sendAck(s.node, link, ackSeq)
	}
}

// handleNodeMsg handles one message of another node, in its order. It
// runs on the dispatcher, which must wait for nothing a peer or a tunnel
// does: local peers get frames with TrySend, tunnel messages go to their
// tunnel's inbox, and a room's message that would wait for a local peer
// goes to the room's backlog with all that follows it.
func (h *Hub) handleNodeMsg(m *nats.Msg) {
	if m.Header.Get(hdrTunnel) != "" {
		h.onTunnelMsg(m)
		return
	}
	v := h.view(m.Header.Get(hdrRoom))
	if v == nil {
		return // no peer of this node is in the room any more
	}
	if v.backlog.busy() {
		h.queueRoomMsg(v, m)
		return
	}
	switch m.Header.Get(hdrKind) {
	case kindFrame:
		h.relayFrame(v, m)
	case kindSnapshot:
		s, ok := h.readSnapshot(m)
		if !ok {
			return
		}
		h.remoteRelay.RLock()
		done := h.onSnapshot(v, s)
		h.remoteRelay.RUnlock()
		if !done {
			h.queueRoom(v, func() { h.settleSnapshot(v, s) }, len(m.Data))
		}
	}
}

// queueRoomMsg hands a room's message to its backlog, behind those
// waiting there.
func (h *Hub) queueRoomMsg(v *roomView, m *nats.Msg) {
	h.queueRoom(v, func() {
		switch m.Header.Get(hdrKind) {
		case kindFrame:
			h.relayFrame(v, m)
		case kindSnapshot:
			if s, ok := h.readSnapshot(m); ok {
				h.settleSnapshot(v, s)
			}
		}
	}, len(m.Data))
}

// queueRoom queues a job on the room's backlog. A backlog that overflows
// holds more than the room's local peers could take in order: they are
// disconnected as too slow (they resume or join again), rather than miss
// frames unknowingly.
func (h *Hub) queueRoom(v *roomView, job func(), size int) {
	if v.backlog.push(job, size) {
		return
	}
	v.mu.Lock()
	var peers []signaling.Peer
	for _, l := range v.locals {
		if !l.left {
			peers = append(peers, l.peer)
		}
	}
	v.mu.Unlock()
	h.logger.Warn("a room's frames from other servers piled up behind a slow peer; disconnecting its peers here",
		zap.Int("peers", len(peers)))
	for _, p := range peers {
		p.Close(signaling.CloseTooSlow, "outbound queue full: peer is not reading")
	}
}

// relayFrame relays a remote peer's frame while holding remoteRelay, so
// that a removal of the sender waits for it.
func (h *Hub) relayFrame(v *roomView, m *nats.Msg) {
	h.remoteRelay.RLock()
	defer h.remoteRelay.RUnlock()
	h.onFrame(v, m)
}

// onFrame relays a remote peer's frame to local peers, unless the sender
// has left by now, so nothing follows its peer-left. A local peer too
// slow to take it is dropped rather than waited for.
func (h *Hub) onFrame(v *roomView, m *nats.Msg) {
	from, to := m.Header.Get(hdrFrom), m.Header.Get(hdrTo)
	v.mu.Lock()
	var targets []signaling.Peer
	for _, mem := range v.members {
		if mem.ID == from && mem.Node != h.node {
			if to == "" {
				targets = v.welcomedLocals(from)
			} else if l := v.locals[to]; l != nil && !l.left && l.welcomed {
				targets = []signaling.Peer{l.peer}
			}
			break
		}
	}
	v.mu.Unlock()
	for _, p := range targets {
		p.TrySend(m.Data)
	}
}

// snapshot is a room's state another node wrote, as a message carries it.
type snapshot struct {
	rev      uint64
	members  []member
	replaced string // the member whose seat the change took
	evicted  *local // the local peer replaced, once marked as such
}

func (h *Hub) readSnapshot(m *nats.Msg) (*snapshot, bool) {
	rev, err := strconv.ParseUint(m.Header.Get(hdrRev), 10, 64)
	var st roomState
	if err == nil {
		err = json.Unmarshal(m.Data, &st)
	}
	if err != nil {
		h.logger.Error("unreadable room snapshot from another server", zap.Error(err))
		return nil, false
	}
	return &snapshot{rev: rev, members: st.Members, replaced: m.Header.Get(hdrReplaced)}, true
}

// onSnapshot moves the view to a newer state another node wrote, and
// disconnects a local peer whose seat a join there took; the caller holds
// remoteRelay for reading. It waits for no peer: it reports false, having
// only marked the peer replaced, when a local peer on its way out still
// has a frame on its way, which the others must get before its peer-left
// (settleSnapshot waits for it).
func (h *Hub) onSnapshot(v *roomView, s *snapshot) bool {
	v.mu.Lock()
	if s.replaced != "" && s.rev > v.rev {
		if l := v.locals[s.replaced]; l != nil && !l.left {
			l.left, s.evicted = true, l
		}
	}
	if !v.settled() {
		v.mu.Unlock()
		return false
	}
	ev := h.apply(v, s.rev, s.members)
	v.mu.Unlock()
	dispatch(ev)
	if s.evicted != nil {
		s.evicted.peer.TrySend(replacedFrame)
		s.evicted.peer.Close(signaling.CloseReplaced, signaling.CodeReplaced)
	}
	return true
}

// settleSnapshot applies a snapshot on the room's backlog, once the local
// peers on their way out have no frame on its way. It waits holding no
// lock: a removal elsewhere waits for remoteRelay, and the dispatcher
// behind it.
func (h *Hub) settleSnapshot(v *roomView, s *snapshot) {
	for {
		v.retireLeaving()
		h.remoteRelay.RLock()
		done := h.onSnapshot(v, s)
		h.remoteRelay.RUnlock()
		if done {
			return
		}
	}
}

var replacedFrame = mustJSON(signaling.ErrorFrame{
	Type:    signaling.TypeError,
	Code:    signaling.CodeReplaced,
	Message: "a newer connection of this session took its place",
})

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
		want, _ := v.effective(st.Members, h.node)
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
	h.publishSnapshot(v.key, res, "")
	return h.apply(v, res.rev, res.new.Members), nil
}
