package signaling

import "sync"

// MemoryHub is the in-process Hub: rooms live in a map and are gone when
// their last peer leaves.
type MemoryHub struct {
	mu     sync.RWMutex
	rooms  map[string]*room
	closed bool
}

// room is a set of peers. Its own lock keeps relaying in one room from
// contending with other rooms; membership changes also hold the hub lock.
type room struct {
	mu    sync.Mutex
	peers map[string]Peer
	order []string // join order, so welcome lists members predictably
}

var _ Hub = (*MemoryHub)(nil)

// NewMemoryHub returns an empty hub.
func NewMemoryHub() *MemoryHub {
	return &MemoryHub{rooms: make(map[string]*room)}
}

// Join implements Hub.
func (h *MemoryHub) Join(name string, p Peer, maxPeers int, welcome func([]PeerInfo) []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrHubClosed
	}
	r := h.rooms[name]
	if r == nil {
		r = &room{peers: make(map[string]Peer)}
		h.rooms[name] = r
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.peers[p.ID()]; dup {
		return ErrDuplicateID
	}
	if maxPeers > 0 && len(r.peers) >= maxPeers {
		return ErrRoomFull
	}
	members := make([]PeerInfo, 0, len(r.order))
	for _, id := range r.order {
		members = append(members, PeerInfo{ID: id})
	}
	p.Send(welcome(members))
	joined := membershipFrame(TypePeerJoined, p.ID())
	for _, other := range r.peers {
		other.Send(joined)
	}
	r.peers[p.ID()] = p
	r.order = append(r.order, p.ID())
	return nil
}

// Leave implements Hub.
func (h *MemoryHub) Leave(name, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[name]
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.peers[id]; !ok {
		return
	}
	delete(r.peers, id)
	for i, v := range r.order {
		if v == id {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
	if len(r.peers) == 0 {
		delete(h.rooms, name)
		return
	}
	left := membershipFrame(TypePeerLeft, id)
	for _, other := range r.peers {
		other.Send(left)
	}
}

// Deliver implements Hub.
func (h *MemoryHub) Deliver(name, from, to string, frame []byte) error {
	h.mu.RLock()
	r := h.rooms[name]
	h.mu.RUnlock()
	if r == nil {
		return ErrUnknownPeer
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if to != "" {
		p, ok := r.peers[to]
		if !ok {
			return ErrUnknownPeer
		}
		p.Send(frame)
		return nil
	}
	for id, p := range r.peers {
		if id != from {
			p.Send(frame)
		}
	}
	return nil
}

// Stats returns how many rooms and peers the hub holds.
func (h *MemoryHub) Stats() (rooms, peers int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, r := range h.rooms {
		r.mu.Lock()
		peers += len(r.peers)
		r.mu.Unlock()
	}
	return len(h.rooms), peers
}

// Shutdown refuses new peers and closes every member with code 1001.
func (h *MemoryHub) Shutdown() {
	h.mu.Lock()
	h.closed = true
	var all []Peer
	for _, r := range h.rooms {
		r.mu.Lock()
		for _, p := range r.peers {
			all = append(all, p)
		}
		r.mu.Unlock()
	}
	h.mu.Unlock()
	// Close outside the locks: a closing peer leaves, which takes them.
	for _, p := range all {
		p.Close(CloseGoingAway, "server shutting down")
	}
}
