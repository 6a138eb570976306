package natshub

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
)

// The rooms API across servers: the rooms and their members are read from
// the bucket, so any server lists them all. A member held by this server
// is handed to the API as its own peer (the session); one held by another
// server as a memberOn, a stand-in whose every act (send a message, end,
// leave) is a request to that server's action subject, answered once the
// server has acted there. The stand-ins learn how their member is
// connected (transport, away) by one describe request per server.

var (
	_ hub.Rooms     = (*Hub)(nil)
	_ hub.Peer      = (*memberOn)(nil)
	_ hub.Describer = (*memberOn)(nil)
	_ hub.Ender     = (*memberOn)(nil)
)

// actionWait bounds the wait for another server to act on its member:
// ending one leaves its room there, a compare-and-set of opTimeout.
const actionWait = opTimeout + time.Second

// The acts a server may ask of the one holding a member.
const (
	actDescribe = "describe" // how the members are connected
	actSend     = "send"     // queue a frame
	actClose    = "close"    // close the connection
	actFatal    = "fatal"    // a fatal error, then the connection closes for good
	actLeave    = "leave"    // take the member out of its room
)

// action is a request on a server's action subject.
type action struct {
	Op    string   `json:"op"`
	Key   string   `json:"key"` // the room's key in the bucket
	IDs   []string `json:"ids"`
	Frame []byte   `json:"frame,omitempty"`
	Code  string   `json:"code,omitempty"` // an error's code, or a close's reason
	Msg   string   `json:"msg,omitempty"`
	Close int      `json:"close,omitempty"`
}

// actionReply answers an action: the ids acted on, and for describe how
// each is connected.
type actionReply struct {
	Done  []string    `json:"done"`
	Peers []described `json:"peers,omitempty"`
	Error string      `json:"error,omitempty"`
}

type described struct {
	ID        string `json:"id"`
	Transport string `json:"transport"`
	Away      bool   `json:"away"`
}

func (h *Hub) actionSubject(node string) string { return h.cfg.prefix + ".act." + node }

// ListRooms implements hub.Rooms: every room of the hub, cluster-wide.
func (h *Hub) ListRooms() ([]hub.RoomInfo, error) {
	if err := h.connected(); err != nil {
		return nil, err
	}
	ctx, cancel := opContext()
	defer cancel()
	all, err := h.loadRooms(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]hub.RoomInfo, 0, len(all))
	for _, st := range all {
		out = append(out, hub.RoomInfo{Room: st.Room, Peers: len(st.Members), StartedAt: time.UnixMilli(st.Members[0].At)})
	}
	return out, nil
}

// RoomMembers implements hub.Rooms: the members of room on every server,
// in join order, with a peer the rooms API acts on each through.
func (h *Hub) RoomMembers(room string) ([]hub.MemberInfo, error) {
	if err := h.connected(); err != nil {
		return nil, err
	}
	key := h.roomKey(room)
	ctx, cancel := opContext()
	st, _, err := h.load(ctx, key)
	cancel()
	if err != nil || len(st.Members) == 0 {
		return nil, err
	}
	out := make([]hub.MemberInfo, 0, len(st.Members))
	remote := make(map[string][]*memberOn) // by node
	for _, m := range st.Members {
		info := hub.MemberInfo{PeerInfo: m.info(), JoinedAt: time.UnixMilli(m.At), Node: m.Node}
		if p := h.localPeer(key, m); p != nil {
			info.Peer = p
		} else {
			on := &memberOn{h: h, node: m.Node, key: key, id: m.ID}
			remote[m.Node] = append(remote[m.Node], on)
			info.Peer = on
		}
		out = append(out, info)
	}
	for node, ons := range remote {
		h.describe(node, key, ons)
	}
	return out, nil
}

// localPeer returns the peer of member m connected here, or nil.
func (h *Hub) localPeer(key string, m member) hub.Peer {
	if m.Node != h.node {
		return nil
	}
	v := h.view(key)
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if l := v.locals[m.ID]; l != nil && !l.left {
		return l.peer
	}
	return nil
}

// describe asks node how its members ons are connected; a node that does
// not answer leaves them undescribed (no transport, not away).
func (h *Hub) describe(node, key string, ons []*memberOn) {
	ids := make([]string, len(ons))
	for i, on := range ons {
		ids[i] = on.id
	}
	r, err := h.act(node, action{Op: actDescribe, Key: key, IDs: ids})
	if err != nil {
		h.logger.Warn("asking a server how its members are connected", zap.String("node", node), zap.Error(err))
		return
	}
	for _, d := range r.Peers {
		for _, on := range ons {
			if on.id == d.ID {
				on.transport, on.away = d.Transport, d.Away
			}
		}
	}
}

// act asks node to act on its members and waits for its answer.
func (h *Hub) act(node string, a action) (actionReply, error) {
	var r actionReply
	body, _ := json.Marshal(a) // strings, ints and bytes: always marshals
	m, err := h.nc.Request(h.actionSubject(node), body, actionWait)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return r, fmt.Errorf("unreadable answer from server %s: %w", node, err)
	}
	if r.Error != "" {
		return r, errors.New(r.Error)
	}
	return r, nil
}

// onAction acts on this server's members as another server's rooms API
// asked. Members it no longer holds are left out of the answer.
func (h *Hub) onAction(m *nats.Msg) {
	var a action
	reply := func(r actionReply) {
		b, _ := json.Marshal(r)
		_ = m.Respond(b)
	}
	if err := json.Unmarshal(m.Data, &a); err != nil {
		reply(actionReply{Error: "unreadable action"})
		return
	}
	peers := h.heldHere(a.Key, a.IDs)
	r := actionReply{Done: []string{}}
	for _, p := range peers {
		ok, err := h.actOn(p, a)
		if err != nil {
			reply(actionReply{Error: err.Error()})
			return
		}
		if ok {
			r.Done = append(r.Done, p.ID())
		}
		if d, isD := p.(hub.Describer); isD && a.Op == actDescribe {
			r.Peers = append(r.Peers, described{ID: p.ID(), Transport: d.TransportKind(), Away: d.Away()})
		}
	}
	reply(r)
}

// heldHere returns the members ids of the room at key connected here.
func (h *Hub) heldHere(key string, ids []string) []hub.Peer {
	v := h.view(key)
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []hub.Peer
	for _, id := range ids {
		if l := v.locals[id]; l != nil && !l.left {
			out = append(out, l.peer)
		}
	}
	return out
}

// actOn does a's act to p, as the rooms API would to a peer of its own.
func (h *Hub) actOn(p hub.Peer, a action) (bool, error) {
	e, isEnder := p.(hub.Ender)
	switch a.Op {
	case actDescribe:
	case actSend:
		return p.Send(a.Frame), nil
	case actClose:
		p.Close(a.Close, a.Code)
	case actFatal:
		if !isEnder {
			p.Close(a.Close, a.Code)
			break
		}
		e.Fatal(a.Code, a.Msg, a.Close)
	case actLeave:
		if !isEnder {
			h.leaveKey(a.Key, p.ID())
			break
		}
		e.Leave()
	default:
		return false, fmt.Errorf("unknown action %q", a.Op)
	}
	return true, nil
}

// memberOn stands for a member another server holds: what the rooms API
// does to it is done there.
type memberOn struct {
	h             *Hub
	node, key, id string
	transport     string
	away          bool
}

func (m *memberOn) ID() string            { return m.id }
func (m *memberOn) TransportKind() string { return m.transport }
func (m *memberOn) Away() bool            { return m.away }

// Send implements hub.Peer: true once the member's server queued frame.
func (m *memberOn) Send(frame []byte) bool {
	return m.do(action{Op: actSend, Frame: frame})
}

// TrySend implements hub.Peer: it queues nothing, since queueing takes a
// round trip to the member's server, which TrySend must not wait for; the
// caller keeps the frame (the rooms API uses Send).
func (m *memberOn) TrySend([]byte) bool { return false }

// Close implements hub.Peer.
func (m *memberOn) Close(code int, reason string) {
	m.do(action{Op: actClose, Close: code, Code: reason})
}

// Fatal implements hub.Ender.
func (m *memberOn) Fatal(code, msg string, closeCode int) {
	m.do(action{Op: actFatal, Code: code, Msg: msg, Close: closeCode})
}

// Leave implements hub.Ender.
func (m *memberOn) Leave() { m.do(action{Op: actLeave}) }

// do asks the member's server to act, and says whether it did.
func (m *memberOn) do(a action) bool {
	a.Key, a.IDs = m.key, []string{m.id}
	r, err := m.h.act(m.node, a)
	if err != nil {
		m.h.logger.Warn("acting on a member another server holds", zap.String("op", a.Op), zap.String("node", m.node), zap.Error(err))
		return false
	}
	return len(r.Done) == 1
}
