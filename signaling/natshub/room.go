package natshub

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/natshub/link"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
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
	// At is when the member joined, in Unix milliseconds (the rooms API's
	// joined_at, and its room's started_at for the first member).
	At int64 `json:"at,omitempty"`
}

func (m member) info() wire.PeerInfo {
	return wire.PeerInfo{ID: m.ID, User: m.User, Name: m.Name}
}

// roomState is a room's value in the bucket: its members in join order,
// and the seats joins took over lately. The takeovers are in the state
// rather than only in the snapshot that announces them, so a node that
// reads the room before that snapshot arrives (its own join, a sweep)
// disconnects its replaced peer instead of taking the peer for one an
// outage dropped and putting it back.
type roomState struct {
	Room     string   `json:"room"`
	Members  []member `json:"members"`
	Unseated []member `json:"unseated,omitempty"`
}

// maxUnseated bounds the takeovers a room remembers: a node hears of one
// within a snapshot's trip, long before this many more happen in the room.
const maxUnseated = 16

// unseated says whether the seat of id on node was taken over.
func (s *roomState) unseated(id, node string) bool {
	return slices.ContainsFunc(s.Unseated, func(m member) bool { return m.ID == id && m.Node == node })
}

// seat records that a member joins: a new seat of its id forgets any
// takeover of an old one, and gone, when a takeover, is remembered.
func (s *roomState) seat(me, gone member) {
	s.Unseated = slices.DeleteFunc(s.Unseated, func(m member) bool { return m.ID == me.ID })
	if gone.ID != "" {
		s.Unseated = append(s.Unseated, member{ID: gone.ID, Node: gone.Node})
		s.Unseated = s.Unseated[max(0, len(s.Unseated)-maxUnseated):]
	}
	s.Members = append(s.Members, me)
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
		res := casResult{old: st, new: roomState{Room: st.Room, Members: slices.Clone(st.Members), Unseated: slices.Clone(st.Unseated)}}
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
}

// Bounds of what waits in a local peer's feed. An outage may release up
// to link.MaxPending frames of a server at once, all maybe for one peer, which
// takes them at its reading pace; in bytes, four times what its own
// queue holds (1 MiB). A feed beyond them is a reader too slow to keep.
const (
	maxFeed      = link.MaxPending
	maxFeedBytes = 4 << 20
)

// local is a peer connected to this node. relaying is held for reading
// while its frames are on their way; removal takes it for writing before
// peer-left goes out, so none of its frames can follow.
//
// What other servers send the peer, and the membership changes, go
// through its feed, in order: the feed's goroutine waits for room in the
// peer's queue (Send), which paces them to its reading, and the
// dispatcher waits for no peer.
type local struct {
	peer     hub.Peer
	info     member
	seq      uint64
	left     bool // no longer a member; guarded by roomView.mu
	welcomed bool // has had its welcome, so may get other frames
	relaying sync.RWMutex
	feed     inbox
}

func newLocal(p hub.Peer, info member, seq uint64) *local {
	return &local{peer: p, info: info, seq: seq, feed: inbox{maxJobs: maxFeed, maxBytes: maxFeedBytes}}
}

// send queues a job for the peer's feed, of size bytes. A peer whose feed
// overflows is not reading: it is disconnected, as a full queue would
// (CloseTooSlow).
func (l *local) send(job func(), size int) {
	if !l.feed.push(job, size) {
		l.peer.Close(wire.CloseTooSlow, "outbound queue full: peer is not reading")
	}
}

// relay gives the peer a frame from another server: at once when nothing
// waits in its feed and its queue has room, which is the common case and
// costs no goroutine; else through the feed, after what waits there.
// Only the dispatcher relays, so its frames keep their order either way.
func (l *local) relay(frame []byte) {
	if l.feed.idle() && l.peer.TrySend(frame) {
		return
	}
	l.send(func() { l.peer.Send(frame) }, len(frame))
}

// retire waits until no frame from a removed peer is still on its way.
func (l *local) retire() {
	l.relaying.Lock()
	//lint:ignore SA2001 an empty critical section: waiting is the point
	l.relaying.Unlock()
}

// isLocal says whether id is a current member connected here.
func (v *roomView) isLocal(id string) bool {
	l := v.locals[id]
	return l != nil && !l.left
}

// effective is the membership to show local peers for a stored state:
// this node's own peers as this node knows them (a stored state may lack
// one of them after an outage, until reconcile puts it back), except
// those whose seat a join took over.
func (v *roomView) effective(st roomState, self string) (out []member, missing bool) {
	for _, m := range st.Members {
		if m.Node != self || v.isLocal(m.ID) {
			out = append(out, m)
		}
	}
	var extra []*local
	for id, l := range v.locals {
		if !l.left && !st.unseated(id, self) && !slices.ContainsFunc(out, func(m member) bool { return m.ID == id }) {
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
	targets []*local
	// retire are local peers removed; remote says remote ones were.
	retire []*local
	remote bool
	// evict are local peers whose seat a join took over: they are told
	// they were replaced and disconnected.
	evict []*local
}

// apply moves the view to a stored state at rev, if newer, and returns
// the peer-left and peer-joined frames owed to the local peers. The
// caller holds v.mu.
func (h *Hub) apply(v *roomView, rev uint64, st roomState) events {
	if rev <= v.rev {
		return events{}
	}
	v.rev = rev
	return h.refresh(v, st)
}

// refresh shows the local peers the membership st; the caller holds v.mu.
func (h *Hub) refresh(v *roomView, st roomState) events {
	next, missing := v.effective(st, h.node)
	if missing {
		h.trigger()
	}
	var ev events
	for id, l := range v.locals {
		if !l.left && st.unseated(id, h.node) {
			l.left = true
			ev.evict = append(ev.evict, l)
		}
	}
	for _, m := range v.members {
		if !slices.ContainsFunc(next, func(n member) bool { return n.ID == m.ID }) {
			ev.frames = append(ev.frames, wire.Left(m.ID))
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
			ev.frames = append(ev.frames, wire.Joined(m.info()))
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
func (v *roomView) welcomedLocals(except string) []*local {
	var out []*local
	for _, m := range v.members {
		if l := v.locals[m.ID]; l != nil && !l.left && l.welcomed && m.ID != except {
			out = append(out, l)
		}
	}
	return out
}

// feedWait bounds how long a change made here waits for the targets'
// feeds to take its frames: as long as a sender waits for room in a slow
// reader's queue. A reader further behind does not hold the change up
// longer (it may then get a joiner's first frames before its peer-joined).
const feedWait = 5 * time.Second

// deliver sends the events of a change this node made, on a goroutine
// that may wait: for the frames on their way from the local peers
// removed, for the dispatcher's relays of the remote ones (so none of
// their frames follows their peer-left), and until the targets' feeds
// took the frames (so a joiner's frames, sent directly, follow its
// peer-joined, and the change's cause is paced to its readers).
func (h *Hub) deliver(ev events) {
	evict(ev.evict)
	for _, l := range ev.retire {
		l.retire()
	}
	if ev.remote {
		h.remoteRelay.Lock()
		//lint:ignore SA2001 waiting for the dispatcher is the point
		h.remoteRelay.Unlock()
	}
	if len(ev.frames) == 0 {
		return
	}
	done := make(chan struct{}, len(ev.targets))
	for _, t := range ev.targets {
		t.feed.pushAnyway(func() {
			sendAll(t.peer, ev.frames)
			done <- struct{}{}
		})
	}
	timer := time.NewTimer(feedWait)
	defer timer.Stop()
	for range ev.targets {
		select {
		case <-done:
		case <-timer.C:
			return
		}
	}
}

// dispatch queues the events of another node's change, from the
// dispatcher, which waits for no peer: each target's feed first waits
// for the frames still on their way from the local peers removed, so
// that they come before their peer-left.
func dispatch(ev events) {
	evict(ev.evict)
	size := 0
	for _, f := range ev.frames {
		size += len(f)
	}
	for _, t := range ev.targets {
		t.send(func() {
			for _, l := range ev.retire {
				l.retire()
			}
			sendAll(t.peer, ev.frames)
		}, size)
	}
}

// evict tells local peers whose seat was taken over that they were
// replaced, after what their feeds hold, and disconnects them.
func evict(ls []*local) {
	for _, l := range ls {
		l.send(func() {
			l.peer.Send(replacedFrame)
			l.peer.Close(wire.CloseReplaced, wire.CodeReplaced)
		}, len(replacedFrame))
	}
}

var replacedFrame = wire.Replaced()

func sendAll(p hub.Peer, frames [][]byte) {
	for _, f := range frames {
		p.Send(f)
	}
}
