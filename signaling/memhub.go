package signaling

import (
	"slices"
	"sync"
)

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
	others, err := h.add(name, p, maxPeers, welcome)
	if err != nil {
		return err
	}
	sendAll(others, membershipFrame(TypePeerJoined, p.ID()))
	return nil
}

// add puts p in the room and returns the members it found there.
func (h *MemoryHub) add(name string, p Peer, maxPeers int, welcome func([]PeerInfo) []byte) ([]Peer, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}
	r := h.rooms[name]
	if r == nil {
		r = &room{peers: make(map[string]Peer)}
		h.rooms[name] = r
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.peers[p.ID()]; dup {
		return nil, ErrDuplicateID
	}
	if maxPeers > 0 && len(r.peers) >= maxPeers {
		return nil, ErrRoomFull
	}
	members := make([]PeerInfo, 0, len(r.order))
	for _, id := range r.order {
		members = append(members, PeerInfo{ID: id})
	}
	others := r.members()
	// Queued before p becomes addressable, so it is p's first frame; p's
	// queue is empty, so this cannot wait while the locks are held.
	p.Send(welcome(members))
	r.peers[p.ID()] = p
	r.order = append(r.order, p.ID())
	return others, nil
}

// Leave implements Hub.
func (h *MemoryHub) Leave(name, id string) {
	sendAll(h.remove(name, id), membershipFrame(TypePeerLeft, id))
}

// remove takes the peer out of the room and returns who remains.
func (h *MemoryHub) remove(name, id string) []Peer {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[name]
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.peers[id]; !ok {
		return nil
	}
	delete(r.peers, id)
	r.order = slices.DeleteFunc(r.order, func(v string) bool { return v == id })
	if len(r.peers) == 0 {
		delete(h.rooms, name)
	}
	return r.members()
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
	var targets []Peer
	if to != "" {
		p, ok := r.peers[to]
		if !ok {
			r.mu.Unlock()
			return ErrUnknownPeer
		}
		targets = []Peer{p}
	} else {
		targets = make([]Peer, 0, len(r.peers))
		for id, p := range r.peers {
			if id != from {
				targets = append(targets, p)
			}
		}
	}
	r.mu.Unlock()
	// Sending may wait for a peer's queue to drain: never under a lock, so
	// only the sender is held back, not the room.
	sendAll(targets, frame)
	return nil
}

// members lists the room's peers in join order; the caller holds r.mu.
func (r *room) members() []Peer {
	out := make([]Peer, 0, len(r.peers))
	for _, id := range r.order {
		out = append(out, r.peers[id])
	}
	return out
}

func sendAll(peers []Peer, frame []byte) {
	for _, p := range peers {
		p.Send(frame)
	}
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
