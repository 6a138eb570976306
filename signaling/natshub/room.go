package natshub

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/caddy-webrtc/caddy-webrtc/signaling"
)

// maxCASAttempts bounds the retries of one compare-and-set when others
// keep changing the same room.
const maxCASAttempts = 200

// member is one seat of a room as stored in the bucket.
type member struct {
	ID   string `json:"id"`
	Node string `json:"node"`
	User string `json:"user,omitempty"`
	Name string `json:"name,omitempty"`
}

func (m member) info() signaling.PeerInfo {
	return signaling.PeerInfo{ID: m.ID, User: m.User, Name: m.Name}
}

// roomState is a room's value in the bucket: its members in join order.
type roomState struct {
	Room    string   `json:"room"`
	Members []member `json:"members"`
}

func (s *roomState) index(id string) int {
	return slices.IndexFunc(s.Members, func(m member) bool { return m.ID == id })
}

// load reads a room; a missing room is empty with revision 0.
func (h *Hub) load(ctx context.Context, key string) (roomState, uint64, error) {
	var st roomState
	e, err := h.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, err
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return st, 0, fmt.Errorf("room %s holds %q: %w", key, e.Value(), err)
	}
	return st, e.Revision(), nil
}

// change edits a room's state; it reports whether anything changed, or an
// error that stops the update.
type change func(st *roomState) (bool, error)

// casResult is a room before and after an update.
type casResult struct {
	old, new roomState
	rev      uint64 // of new; for a room deleted, just above old's
	changed  bool
}

// update applies fn to the room with compare-and-set, retrying when
// another node changed the room in between. An emptied room is deleted,
// so rooms are freed cluster-wide with their last member.
func (h *Hub) update(ctx context.Context, key string, fn change) (casResult, error) {
	for range maxCASAttempts {
		st, rev, err := h.load(ctx, key)
		if err != nil {
			return casResult{}, err
		}
		res := casResult{old: st, new: roomState{Room: st.Room, Members: slices.Clone(st.Members)}}
		if res.changed, err = fn(&res.new); err != nil || !res.changed {
			res.rev = rev
			return res, err
		}
		res.rev, err = h.write(ctx, key, rev, res.new)
		if errors.Is(err, jetstream.ErrKeyExists) { // someone else was first
			continue
		}
		return res, err
	}
	return casResult{}, fmt.Errorf("room %s: gave up after %d conflicting updates", key, maxCASAttempts)
}

// write stores st if the room is still at rev.
func (h *Hub) write(ctx context.Context, key string, rev uint64, st roomState) (uint64, error) {
	if len(st.Members) == 0 {
		if rev == 0 {
			return 0, nil
		}
		// The delete marker's revision is not returned, but it is above
		// rev, and any later write is above the marker.
		return rev + 1, h.kv.Delete(ctx, key, jetstream.LastRevision(rev))
	}
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return h.kv.Create(ctx, key, b)
	}
	return h.kv.Update(ctx, key, b, rev)
}

// roomView is this node's picture of a room it has peers in: the members
// as of the newest revision it has seen, and its own peers.
type roomView struct {
	key, name string
	mu        sync.Mutex
	rev       uint64
	members   []member // as the local peers have been told, in join order
	locals    map[string]*local
	joining   int // joins in progress; guarded by Hub.mu
	// backlog holds the room's messages from other nodes while one of
	// them waits for a local peer on its way out (see settled): the
	// dispatcher does not wait, and the room keeps its order.
	backlog inbox
}

// local is a peer connected to this node. relaying is held for reading
// while its frames are on their way; removal takes it for writing before
// peer-left goes out, so none of its frames can follow.
type local struct {
	peer     signaling.Peer
	info     member
	seq      uint64
	left     bool // no longer a member; guarded by roomView.mu
	welcomed bool // has had its welcome, so may get other frames
	relaying sync.RWMutex
}

// retire waits until no frame from a removed peer is still on its way.
func (l *local) retire() {
	l.relaying.Lock()
	//lint:ignore SA2001 an empty critical section: waiting is the point
	l.relaying.Unlock()
}

// settled says whether no local peer on its way out (left, not yet
// removed) still has a frame on its way, so that the others may be told
// it left; the caller holds v.mu. Such a frame may wait for a slow
// reader (Deliver's Send), which the dispatcher must not wait for. A
// peer marked left takes no new frame, so the answer holds while v.mu is
// held.
func (v *roomView) settled() bool {
	for _, l := range v.locals {
		if !l.left {
			continue
		}
		if !l.relaying.TryLock() {
			return false
		}
		l.relaying.Unlock()
	}
	return true
}

// retireLeaving waits until the local peers on their way out have no
// frame on its way; the caller holds no lock.
func (v *roomView) retireLeaving() {
	v.mu.Lock()
	var leaving []*local
	for _, l := range v.locals {
		if l.left {
			leaving = append(leaving, l)
		}
	}
	v.mu.Unlock()
	for _, l := range leaving {
		l.retire()
	}
}

// isLocal says whether id is a current member connected here.
func (v *roomView) isLocal(id string) bool {
	l := v.locals[id]
	return l != nil && !l.left
}

// effective is the membership to show local peers for a stored state:
// this node's own peers as this node knows them (a stored state may lack
// one of them after an outage, until reconcile puts it back).
func (v *roomView) effective(st []member, self string) (out []member, missing bool) {
	for _, m := range st {
		if m.Node != self || v.isLocal(m.ID) {
			out = append(out, m)
		}
	}
	var extra []*local
	for id, l := range v.locals {
		if !l.left && !slices.ContainsFunc(out, func(m member) bool { return m.ID == id }) {
			extra = append(extra, l)
		}
	}
	slices.SortFunc(extra, func(a, b *local) int { return cmp.Compare(a.seq, b.seq) })
	for _, l := range extra {
		out = append(out, l.info)
	}
	return out, len(extra) > 0
}

// events are frames for local peers, sent once the room lock is released.
type events struct {
	frames  [][]byte
	targets []signaling.Peer
	// retire are local peers removed; remote says remote ones were.
	retire []*local
	remote bool
}

// apply moves the view to a stored state at rev, if newer, and returns
// the peer-left and peer-joined frames owed to the local peers. The
// caller holds v.mu.
func (h *Hub) apply(v *roomView, rev uint64, st []member) events {
	if rev <= v.rev {
		return events{}
	}
	v.rev = rev
	return h.refresh(v, st)
}

// refresh shows the local peers the membership st; the caller holds v.mu.
func (h *Hub) refresh(v *roomView, st []member) events {
	next, missing := v.effective(st, h.node)
	if missing {
		h.trigger()
	}
	var ev events
	for _, m := range v.members {
		if !slices.ContainsFunc(next, func(n member) bool { return n.ID == m.ID }) {
			ev.frames = append(ev.frames, leftFrame(m.ID))
			if m.Node == h.node {
				if l := v.locals[m.ID]; l != nil {
					ev.retire = append(ev.retire, l)
				}
			} else {
				ev.remote = true
			}
		}
	}
	for _, m := range next {
		if !slices.ContainsFunc(v.members, func(o member) bool { return o.ID == m.ID }) {
			ev.frames = append(ev.frames, joinedFrame(m.info()))
		}
	}
	v.members = next
	if len(ev.frames) > 0 {
		ev.targets = v.welcomedLocals("")
	}
	return ev
}

// welcomedLocals lists local members that have had their welcome, but
// not except; the caller holds v.mu.
func (v *roomView) welcomedLocals(except string) []signaling.Peer {
	var out []signaling.Peer
	for _, m := range v.members {
		if l := v.locals[m.ID]; l != nil && !l.left && l.welcomed && m.ID != except {
			out = append(out, l.peer)
		}
	}
	return out
}

// deliver sends the events of a change this node made, on a goroutine
// that may wait: for the frames on their way from the local peers
// removed, for the dispatcher's relays of the remote ones (so none of
// their frames follows their peer-left), and for room in the targets'
// queues, which paces the change's cause to its readers.
func (h *Hub) deliver(ev events) {
	for _, l := range ev.retire {
		l.retire()
	}
	if ev.remote {
		h.remoteRelay.Lock()
		//lint:ignore SA2001 waiting for the dispatcher is the point
		h.remoteRelay.Unlock()
	}
	for _, f := range ev.frames {
		for _, p := range ev.targets {
			p.Send(f)
		}
	}
}

// dispatch sends the events of another node's change from the dispatcher
// (or a room's backlog), which waits for no peer: a reader whose queue is
// full is dropped as too slow. It holds remoteRelay already, and the local
// peers removed were settled (see settled) before the change was applied.
func dispatch(ev events) {
	for _, f := range ev.frames {
		for _, p := range ev.targets {
			p.TrySend(f)
		}
	}
}

func joinedFrame(p signaling.PeerInfo) []byte {
	return mustJSON(signaling.Outbound{Type: signaling.TypePeerJoined, ID: p.ID, User: p.User, Name: p.Name})
}

func leftFrame(id string) []byte {
	return mustJSON(signaling.Outbound{Type: signaling.TypePeerLeft, ID: id})
}

// mustJSON marshals a frame built here; such values always marshal.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("natshub: encoding a frame: " + err.Error())
	}
	return b
}
