package hub

import (
	"slices"
	"sync"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// MemoryHub is the in-process Hub: rooms live in a map and are gone when
// their last peer leaves.
type MemoryHub struct {
	mu     sync.RWMutex
	rooms  map[string]*room
	peers  int // over all rooms
	closed bool
}

// room is a set of peers. Its own lock keeps relaying in one room from
// contending with other rooms; membership changes also hold the hub lock.
type room struct {
	mu    sync.Mutex
	peers map[string]*member
	order []string // join order, so welcome lists members predictably
	// started is when the room got its first member.
	started time.Time
}

// member is a peer in a room. relaying is held for reading while frames
// from the peer are being queued to others, outside the room lock; removal
// takes it for writing before announcing peer-left, so a frame already on
// its way is queued first and none can follow.
type member struct {
	peer     Peer
	info     wire.PeerInfo
	joined   time.Time
	relaying sync.RWMutex
}

var (
	_ Hub   = (*MemoryHub)(nil)
	_ Rooms = (*MemoryHub)(nil)
)

// NewMemoryHub returns an empty hub.
func NewMemoryHub() *MemoryHub {
	return &MemoryHub{rooms: make(map[string]*room)}
}

// Join implements Hub.
func (h *MemoryHub) Join(name string, p Peer, req JoinRequest) (Peer, error) {
	others, replaced, err := h.add(name, p, req)
	if err != nil {
		return nil, err
	}
	if replaced != nil {
		replaced.retire()
		sendAll(others, wire.Left(replaced.peer.ID()))
	}
	info := req.Info
	info.ID = p.ID()
	sendAll(others, wire.Joined(info))
	if replaced != nil {
		return replaced.peer, nil
	}
	return nil, nil
}

// add puts p in the room, in place of req.Replace if that is a member, and
// returns the other members and the replaced one.
func (h *MemoryHub) add(name string, p Peer, req JoinRequest) (others []Peer, replaced *member, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, ErrHubClosed
	}
	r := h.rooms[name]
	created := r == nil
	if r == nil {
		if req.MaxRooms > 0 && len(h.rooms) >= req.MaxRooms {
			return nil, nil, ErrHubFull
		}
		r = &room{peers: make(map[string]*member), started: time.Now()}
		h.rooms[name] = r
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// A room created above and then refused stays empty: drop it again.
	defer func() {
		if len(r.peers) == 0 {
			delete(h.rooms, name)
		}
	}()
	if _, dup := r.peers[p.ID()]; dup {
		return nil, nil, ErrDuplicateID
	}
	replaced = r.peers[req.Replace]
	if replaced == nil && req.MaxPeersTotal > 0 && h.peers >= req.MaxPeersTotal {
		return nil, nil, ErrHubFull
	}
	seats := len(r.peers)
	if replaced != nil {
		seats--
	}
	if req.MaxPeers > 0 && seats >= req.MaxPeers {
		return nil, nil, ErrRoomFull
	}
	if replaced != nil {
		r.delete(req.Replace)
	}
	members := make([]wire.PeerInfo, 0, len(r.order))
	for _, id := range r.order {
		members = append(members, r.peers[id].info)
	}
	others = r.members()
	// Queued before p becomes addressable, so it is p's first frame; p's
	// queue is empty, so this cannot wait while the locks are held.
	p.Send(req.Welcome(members))
	m := &member{peer: p, info: req.Info, joined: time.Now()}
	m.info.ID = p.ID()
	r.peers[p.ID()] = m
	r.order = append(r.order, p.ID())
	if replaced == nil {
		h.peers++
	}
	if w, ok := p.(Watcher); ok {
		w.Joined(created)
	}
	return others, replaced, nil
}

// Leave implements Hub.
func (h *MemoryHub) Leave(name, id string) {
	m, others := h.remove(name, id)
	if m == nil {
		return
	}
	m.retire()
	sendAll(others, wire.Left(id))
}

// remove takes the peer out of the room and returns it and who remains.
func (h *MemoryHub) remove(name, id string) (*member, []Peer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[name]
	if r == nil {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.peers[id]
	if m == nil {
		return nil, nil
	}
	r.delete(id)
	h.peers--
	if len(r.peers) == 0 {
		delete(h.rooms, name)
	}
	if w, ok := m.peer.(Watcher); ok {
		w.Left(len(r.peers) == 0)
	}
	return m, r.members()
}

// retire waits until no frame from a removed member is still on its way.
func (m *member) retire() {
	m.relaying.Lock()
	//lint:ignore SA2001 an empty critical section: waiting is the point
	m.relaying.Unlock()
}

// Deliver implements Hub.
func (h *MemoryHub) Deliver(name, from, to string, frame []byte) error {
	h.mu.RLock()
	r := h.rooms[name]
	h.mu.RUnlock()
	if r == nil {
		return ErrNotMember
	}
	r.mu.Lock()
	sender := r.peers[from]
	if sender == nil {
		r.mu.Unlock()
		return ErrNotMember
	}
	var targets []Peer
	if to != "" {
		m, ok := r.peers[to]
		if !ok {
			r.mu.Unlock()
			return ErrUnknownPeer
		}
		targets = []Peer{m.peer}
	} else {
		targets = make([]Peer, 0, len(r.peers))
		for id, m := range r.peers {
			if id != from {
				targets = append(targets, m.peer)
			}
		}
	}
	// Taken under the room lock, before removal can see the sender gone.
	sender.relaying.RLock()
	r.mu.Unlock()
	// Sending may wait for a peer's queue to drain: never under the room
	// lock, so only the sender is held back, not the room.
	sendAll(targets, frame)
	sender.relaying.RUnlock()
	return nil
}

// delete drops a member from the maps; the caller holds r.mu.
func (r *room) delete(id string) {
	delete(r.peers, id)
	r.order = slices.DeleteFunc(r.order, func(v string) bool { return v == id })
}

// members lists the room's peers in join order; the caller holds r.mu.
func (r *room) members() []Peer {
	out := make([]Peer, 0, len(r.peers))
	for _, id := range r.order {
		out = append(out, r.peers[id].peer)
	}
	return out
}

func sendAll(peers []Peer, frame []byte) {
	for _, p := range peers {
		p.Send(frame)
	}
}

// Members implements Hub.
func (h *MemoryHub) Members(name, id string) []wire.PeerInfo {
	r := h.lockedRoom(name)
	if r == nil {
		return nil
	}
	defer r.mu.Unlock()
	out := make([]wire.PeerInfo, 0, len(r.order))
	for _, m := range r.order {
		if m != id {
			out = append(out, r.peers[m].info)
		}
	}
	return out
}

// Stats implements Hub.
func (h *MemoryHub) Stats() HubStats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return HubStats{Backend: MemoryName, LocalPeers: h.peers, Rooms: len(h.rooms), Peers: h.peers}
}

// Shutdown implements Hub.
func (h *MemoryHub) Shutdown() {
	h.mu.Lock()
	h.closed = true
	var all []Peer
	for _, r := range h.rooms {
		r.mu.Lock()
		for _, m := range r.peers {
			all = append(all, m.peer)
		}
		r.mu.Unlock()
	}
	h.mu.Unlock()
	// Close outside the locks: a closing peer leaves, which takes them.
	for _, p := range all {
		p.Close(wire.CloseGoingAway, "server shutting down")
	}
}

// MemoryName is the memory hub's backend name: in its Stats, and as the
// name of the Caddy module that opens it.
const MemoryName = "memory"

// ListRooms implements Rooms.
func (h *MemoryHub) ListRooms() ([]RoomInfo, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]RoomInfo, 0, len(h.rooms))
	for name, r := range h.rooms {
		r.mu.Lock()
		out = append(out, RoomInfo{Room: name, Peers: len(r.peers), StartedAt: r.started})
		r.mu.Unlock()
	}
	return out, nil
}

// RoomMembers implements Rooms.
func (h *MemoryHub) RoomMembers(name string) ([]MemberInfo, error) {
	r := h.lockedRoom(name)
	if r == nil {
		return nil, nil
	}
	defer r.mu.Unlock()
	out := make([]MemberInfo, 0, len(r.order))
	for _, id := range r.order {
		m := r.peers[id]
		out = append(out, MemberInfo{PeerInfo: m.info, JoinedAt: m.joined, Node: LocalNode, Peer: m.peer})
	}
	return out, nil
}

// lockedRoom returns the room named name with its lock held, or nil.
func (h *MemoryHub) lockedRoom(name string) *room {
	h.mu.RLock()
	r := h.rooms[name]
	h.mu.RUnlock()
	if r != nil {
		r.mu.Lock()
	}
	return r
}
