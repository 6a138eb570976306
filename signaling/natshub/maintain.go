package natshub

import (
	"context"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/natshub/link"
)

// fullSweepTicks is how many heartbeat periods pass between sweeps of
// every room when no known node fell silent: such a sweep only finds
// nodes that died before this one started and that nobody swept.
const fullSweepTicks = 12

// markerTicks is how many heartbeat periods pass between purges of the
// delete markers emptied rooms leave, which otherwise pile up with every
// room ever used; markerAge spares recent ones (nothing needs them, but a
// young marker is cheap and may be replaced by the next join anyway).
const (
	markerTicks = 36
	markerAge   = time.Minute
)

// maintain runs until Shutdown: it heartbeats every node_timeout/3 (on a
// goroutine of its own), removes the members of silent nodes from the
// rooms, keeps tunnels alive and closes those whose far end fell silent,
// and re-asserts this node's members when asked (after a reconnect or a
// failed update).
func (h *Hub) maintain() {
	defer close(h.stopped)
	links, beats := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(links)
		every(h.stop, link.Tick, h.linkTick)
	}()
	defer func() { <-links }()
	// Heartbeats go on their own goroutine: the work below reads and
	// writes the bucket, and while a replicated bucket elects a new leader
	// each operation may wait opTimeout, so heartbeats sent between them
	// would stop long enough for the others to take this node for dead
	// and drop its members.
	go func() {
		defer close(beats)
		every(h.stop, h.nodes.heartbeat, func() { h.nodes.beat(false) })
	}()
	defer func() { <-beats }()
	ticker := newTicker(h.nodes.heartbeat)
	defer ticker.Stop()
	// Tunnels are checked twice a heartbeat period: a keep-alive then goes
	// at most half a period late, and a silent far end is noticed within
	// node_timeout and a sixth.
	tunnels := newTicker(h.nodes.heartbeat / 2)
	defer tunnels.Stop()
	tick := 0 // heartbeat periods
	for {
		select {
		case <-h.stop:
			return
		case <-h.kick:
			h.reconcileAll()
		case <-tunnels.C:
			h.checkTunnels()
		case <-ticker.C:
			tick++
			// Reading every room is the costly part: done when a node we
			// heard fell silent, and now and then for ones we never heard.
			if h.nodes.judging() {
				dead := h.nodes.newlyDead()
				if len(dead) > 0 {
					h.logger.Warn("servers silent for node_timeout; removing their members",
						zap.Strings("nodes", dead))
				}
				if len(dead) > 0 || tick%fullSweepTicks == 0 {
					h.sweep()
				}
			}
			if tick%markerTicks == 0 && h.nodes.isConnected() {
				h.purgeMarkers(markerAge)
			}
			h.inbound.Forget(h.nodes.forget())
		}
	}
}

// every calls fn every period until stop.
func every(stop <-chan struct{}, period time.Duration, fn func()) {
	ticker := newTicker(period)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			fn()
		}
	}
}

// linkTick acknowledges and retransmits on every link, every link.Tick.
func (h *Hub) linkTick() {
	for node, a := range h.inbound.Acks() {
		h.sendAck(node, a)
	}
	h.nodes.tickLinks()
}

// reconcileAll makes the bucket agree with this node's peers: the rooms
// it has peers in get them back if dropped, and every other room loses
// members this node no longer has (such as peers that left while NATS was
// away, whose room this node has since forgotten).
func (h *Hub) reconcileAll() {
	if !h.nodes.isConnected() {
		return // the reconnect asks again
	}
	h.mu.Lock()
	views := h.viewList()
	h.mu.Unlock()
	for _, v := range views {
		h.reconcile(v)
	}
	ctx, cancel := opContext()
	defer cancel()
	keys, err := h.listKeys(ctx)
	if err != nil {
		h.logger.Warn("listing rooms to re-assert members", zap.Error(err))
		return
	}
	for _, key := range keys {
		if h.view(key) != nil {
			continue // reconciled above, or joined since
		}
		res, err := h.update(ctx, key, func(st *roomState) (bool, error) {
			n := len(st.Members)
			st.Members = slices.DeleteFunc(st.Members, func(m member) bool { return m.Node == h.node })
			return len(st.Members) != n, nil
		})
		if err != nil {
			h.logger.Warn("removing members that left while NATS was away", zap.Error(err))
			return
		}
		if res.changed {
			h.publishSnapshot(key, res)
			// Those members' sessions said they left when they did; the
			// room's end is this compare-and-set's to tell.
			h.swept(res.new.Room, nil, len(res.new.Members) == 0)
		}
	}
}

// sweep removes the members of dead nodes from every room of the hub.
// Every live node sweeps; compare-and-set makes the removals agree.
func (h *Hub) sweep() {
	ctx, cancel := opContext()
	defer cancel()
	keys, err := h.listKeys(ctx)
	if err != nil {
		h.logger.Warn("listing rooms to find members of stopped servers", zap.Error(err))
		return
	}
	for _, key := range keys {
		if err := h.sweepRoom(ctx, key); err != nil {
			h.logger.Warn("removing members of a stopped server", zap.Error(err))
			return
		}
	}
}

// The members a sweep removes are reported (hub.Sweeps) by the node whose
// compare-and-set removed them: once for the cluster.
func (h *Hub) sweepRoom(ctx context.Context, key string) error {
	var gone []member
	drop := func(st *roomState) (bool, error) {
		gone = gone[:0] // each attempt starts from the state it read
		st.Members = slices.DeleteFunc(st.Members, func(m member) bool {
			dead := h.nodes.dead(m.Node)
			if dead {
				gone = append(gone, m)
			}
			return dead
		})
		return len(gone) > 0, nil
	}
	v := h.view(key)
	if v == nil {
		res, err := h.update(ctx, key, drop)
		if err == nil && res.changed {
			h.publishSnapshot(key, res)
			h.swept(res.new.Room, gone, len(res.new.Members) == 0)
		}
		return err
	}
	v.mu.Lock()
	res, err := h.update(ctx, key, drop)
	var ev events
	if err == nil && res.changed {
		h.publishSnapshot(key, res)
		ev = h.apply(v, res.rev, res.new)
	}
	v.mu.Unlock()
	if err == nil && res.changed {
		h.swept(res.new.Room, gone, len(res.new.Members) == 0)
	}
	h.deliver(ev)
	return err
}

// checkHubCaps applies MaxRooms and MaxPeersTotal against the cluster-wide
// counts (at most statsTTL old). Unlike the room cap they are not atomic:
// joins racing on several servers may overshoot them by the number of
// racing joins.
func (h *Hub) checkHubCaps(key string, req hub.JoinRequest) error {
	if req.MaxRooms <= 0 && req.MaxPeersTotal <= 0 {
		return nil
	}
	st := h.Stats()
	if req.MaxPeersTotal > 0 && req.Replace == "" && st.Peers >= req.MaxPeersTotal {
		return hub.ErrHubFull
	}
	if req.MaxRooms > 0 && st.Rooms >= req.MaxRooms {
		ctx, cancel := opContext()
		defer cancel()
		room, _, err := h.load(ctx, key)
		if err != nil {
			return ErrUnavailable
		}
		if len(room.Members) == 0 {
			return hub.ErrHubFull
		}
	}
	return nil
}

// newTicker exists so the period is never zero (time.NewTicker panics).
func newTicker(d time.Duration) *time.Ticker {
	if d <= 0 {
		d = time.Second
	}
	return time.NewTicker(d)
}

// purgeMarkers removes the delete markers of this hub's emptied rooms older
// than age. Each purge stops at the marker's own revision, so a room
// created again meanwhile keeps its members.
func (h *Hub) purgeMarkers(age time.Duration) {
	ctx, cancel := opContext()
	defer cancel()
	if err := h.purgeMarkersCtx(ctx, age); err != nil {
		h.logger.Warn("purging markers of emptied rooms", zap.Error(err))
	}
}

func (h *Hub) purgeMarkersCtx(ctx context.Context, age time.Duration) error {
	stream, err := h.js.Stream(ctx, "KV_"+h.bucketName())
	if err != nil {
		return err
	}
	w, err := h.kv.WatchFiltered(ctx, []string{h.keyPfx + ".*"}, jetstream.MetaOnly())
	if err != nil {
		return err
	}
	var markers []jetstream.KeyValueEntry
	for e := range w.Updates() {
		if e == nil {
			break // caught up
		}
		if op := e.Operation(); (op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge) && time.Since(e.Created()) >= age {
			markers = append(markers, e)
		}
	}
	_ = w.Stop()
	for _, e := range markers {
		err := stream.Purge(ctx,
			jetstream.WithPurgeSubject("$KV."+h.bucketName()+"."+e.Key()),
			jetstream.WithPurgeSequence(e.Revision()+1))
		if err != nil {
			return err
		}
	}
	return nil
}
