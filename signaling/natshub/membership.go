package natshub

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// Headers of the messages on a node's subject.
const (
	hdrKind = "K" // kindFrame, kindSnapshot or kindAck
	hdrRoom = "R" // room key
	hdrFrom = "F" // sender of a frame
	hdrTo   = "T" // addressee of a frame; none for a broadcast
	hdrRev  = "V" // revision of a snapshot

	kindFrame    = "f"
	kindSnapshot = "s"
	// kindAck is a link's acknowledgement (link.SetAck), sent to the
	// source's node subject; it is not itself sequenced.
	kindAck = "a"
)

// acquire returns the room's view, creating it, and keeps it while a join
// is in progress.
func (h *Hub) acquire(key, name string) (*roomView, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, hub.ErrHubClosed
	}
	v := h.views[key]
	if v == nil {
		v = &roomView{key: key, name: name, locals: make(map[string]*local)}
		h.views[key] = v
	}
	v.joining++
	return v, nil
}

// release drops the view if no local peer is left in it and no join is
// in progress; joining says the caller's join ended.
func (h *Hub) release(v *roomView, joining bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if joining {
		v.joining--
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.joining == 0 && len(v.locals) == 0 && h.views[v.key] == v {
		delete(h.views, v.key)
	}
}

func (h *Hub) view(key string) *roomView {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.views[key]
}

// Join implements hub.Hub.
func (h *Hub) Join(name string, p hub.Peer, req hub.JoinRequest) (hub.Peer, error) {
	if err := h.connected(); err != nil {
		return nil, err
	}
	key := h.roomKey(name)
	if err := h.checkHubCaps(key, req); err != nil {
		return nil, err
	}
	v, err := h.acquire(key, name)
	if err != nil {
		return nil, err
	}
	defer h.release(v, true)
	ctx, cancel := opContext()
	defer cancel()
	v.mu.Lock()
	replaced, ev, err := h.joinLocked(ctx, v, p, req)
	v.mu.Unlock()
	if err != nil {
		return nil, err
	}
	h.deliver(ev)
	return replaced, nil
}

// joinLocked takes a seat in the bucket, welcomes p and tells the other
// nodes; the caller holds v.mu. Holding it across the compare-and-set
// keeps this node's frames for the room from reaching p before its welcome.
func (h *Hub) joinLocked(ctx context.Context, v *roomView, p hub.Peer, req hub.JoinRequest) (hub.Peer, events, error) {
	me := member{ID: p.ID(), Node: h.node, User: req.Info.User, Name: req.Info.Name, At: time.Now().UnixMilli()}
	if v.locals[me.ID] != nil {
		return nil, events{}, hub.ErrDuplicateID
	}
	var gone member
	res, err := h.update(ctx, v.key, func(st *roomState) (bool, error) {
		st.Room = v.name
		gone = member{}
		if st.index(me.ID) >= 0 {
			return false, hub.ErrDuplicateID
		}
		seats := len(st.Members)
		r := -1
		if req.Replace != "" {
			r = st.index(req.Replace)
		}
		if r >= 0 {
			seats--
		}
		if req.MaxPeers > 0 && seats >= req.MaxPeers {
			return false, hub.ErrRoomFull
		}
		if r >= 0 {
			gone = st.Members[r]
			st.Members = append(st.Members[:r], st.Members[r+1:]...)
		}
		st.seat(me, gone)
		return true, nil
	})
	if err != nil {
		return nil, events{}, h.joinError(err)
	}
	var replaced hub.Peer
	if gone.ID != "" {
		replaced = h.unseat(v, gone)
	}
	l := newLocal(p, me, h.seq.Add(1))
	v.locals[me.ID] = l
	if w, ok := p.(hub.Watcher); ok {
		w.Joined(len(res.old.Members) == 0) // this CAS created the room's entry
	}
	ev := h.apply(v, res.rev, res.new)
	if !slices.ContainsFunc(v.members, func(m member) bool { return m.ID == me.ID }) {
		// Only if the view were ahead of the revision just written, which
		// growing revisions rule out; showing that state beats losing p.
		ev = h.refresh(v, res.new)
	}
	welcome := make([]wire.PeerInfo, 0, len(v.members))
	for _, m := range v.members {
		if m.ID != me.ID {
			welcome = append(welcome, m.info())
		}
	}
	// p's queue is empty, so this cannot wait under the lock.
	p.Send(req.Welcome(welcome))
	l.welcomed = true
	h.publishSnapshot(v.key, res)
	return replaced, ev, nil
}

// joinError passes the hub's own errors on and turns NATS trouble into
// ErrUnavailable, which the handler answers `unavailable`.
func (h *Hub) joinError(err error) error {
	switch err {
	case hub.ErrRoomFull, hub.ErrDuplicateID, hub.ErrHubFull:
		return err
	}
	h.logger.Warn("joining a room through NATS", zap.Error(err))
	return ErrUnavailable
}

// unseat marks the member whose seat a join took; the caller holds v.mu.
// A local one is handed back for the caller to disconnect; a remote one is
// closed by its own node when the snapshot naming it arrives.
func (h *Hub) unseat(v *roomView, m member) hub.Peer {
	if m.Node == h.node {
		if l := v.locals[m.ID]; l != nil {
			l.left = true
			return l.peer
		}
	}
	return remotePeer{id: m.ID}
}

// remotePeer is a member connected to another node, handed back by a
// takeover. Its node disconnects it (close 4410) on its own, so Send and
// Close do nothing here.
type remotePeer struct{ id string }

func (r remotePeer) ID() string        { return r.id }
func (remotePeer) Send([]byte) bool    { return false }
func (remotePeer) TrySend([]byte) bool { return false }
func (remotePeer) Close(int, string)   {}

// publishSnapshot sends a room's new state to every other node that had
// or has a member in it.
func (h *Hub) publishSnapshot(key string, res casResult) {
	body, _ := json.Marshal(res.new) // plain strings: always marshals
	for _, node := range nodesOf(res.old.Members, res.new.Members) {
		if node == h.node {
			continue
		}
		m := nats.NewMsg(h.nodeSubject(node))
		m.Header.Set(hdrKind, kindSnapshot)
		m.Header.Set(hdrRoom, key)
		m.Header.Set(hdrRev, strconv.FormatUint(res.rev, 10))
		m.Data = body
		if err := h.nodes.send(node, m); err != nil {
			h.logger.Warn("telling a server about a room change", zap.String("node", node), zap.Error(err))
		}
	}
}

// nodesOf lists the distinct nodes of some member lists.
func nodesOf(lists ...[]member) []string {
	var out []string
	seen := make(map[string]bool)
	for _, l := range lists {
		for _, m := range l {
			if !seen[m.Node] {
				seen[m.Node] = true
				out = append(out, m.Node)
			}
		}
	}
	return out
}

// Leave implements hub.Hub. Leaving twice, or for a peer of another
// node, does nothing.
func (h *Hub) Leave(name, id string) { h.leaveKey(h.roomKey(name), id) }

// leaveKey is Leave of the room at key.
func (h *Hub) leaveKey(key, id string) {
	v := h.view(key)
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
		ev = h.leaveLocked(v, id, l.peer)
	}
	v.mu.Unlock()
	h.deliver(ev)
	h.release(v, false)
}

// leaveLocked removes a local member from the bucket and tells everyone;
// the caller holds v.mu. While NATS is away, only the local peers are
// told now; reconcile removes the member from the bucket on reconnect.
// p hears it left (hub.Watcher), finished when this CAS emptied the room.
func (h *Hub) leaveLocked(v *roomView, id string, p hub.Peer) events {
	var ev events
	finished := false
	if w, ok := p.(hub.Watcher); ok {
		defer func() { w.Left(finished) }()
	}
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
			finished = len(res.new.Members) == 0 // this CAS deleted the room's entry
			ev = h.apply(v, res.rev, res.new)
			h.publishSnapshot(v.key, res)
		} else if err != nil {
			h.logger.Warn("leaving a room through NATS; retrying on reconnect", zap.Error(err))
			h.trigger()
		}
	} else {
		h.trigger()
	}
	more := h.refresh(v, roomState{Members: v.members}) // in case the bucket was not changed
	ev.frames = append(ev.frames, more.frames...)
	if ev.targets == nil {
		ev.targets = more.targets
	}
	ev.retire = append(ev.retire, more.retire...)
	ev.remote = ev.remote || more.remote
	return ev
}
