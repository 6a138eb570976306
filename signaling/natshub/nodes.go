package natshub

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/natshub/link"
)

// errOutboxFull means frames for a node piled up unacknowledged (it could
// not be reached); the frame is dropped. It stands for link.ErrFull in the
// hub's own terms, which its logs and callers have always shown.
var errOutboxFull = errors.New("signaling hub: too many frames waiting for an unreachable server")

const (
	// helloHeader marks the heartbeat a node sends when it (re)connects;
	// the others answer with one of their own at once.
	helloHeader = "Hello"
	// forgetAfter, in node timeouts, is when a silent node's record goes.
	forgetAfter = 3
)

// nodeTable is what this node knows of the others: when each was last
// heard, and the sending side of the link to each (package link), which
// keeps every message until its node acknowledges it.
//
// A message to node N is published at once only when this node has heard
// N since its own current connection began. Otherwise (we or N just
// reconnected) it waits here, in order, until N's heartbeat shows that N
// is subscribed again: a message published before that would be lost.
// Then every unacknowledged message is published again.
type nodeTable struct {
	h        *Hub
	mu       sync.Mutex
	up       bool
	since    time.Time // start of the current connection
	upCh     chan struct{}
	lastSeen map[string]time.Time // heartbeats: when each was last heard
	mourned  map[string]bool      // silent nodes a sweep was started for
	// sent is when each node last sent anything but a heartbeat (a
	// *atomic.Int64 of nanoseconds since epoch, kept without t.mu for the
	// dispatcher's sake): a node that sends is alive, even when its
	// heartbeats wait behind what it sends, as after a reconnect that
	// publishes thousands of kept frames into a slow NATS server.
	sent      sync.Map
	epoch     time.Time
	links     map[string]*link.Sender
	linkIDs   uint64 // numbers links: the last one started
	heartbeat time.Duration
}

func (t *nodeTable) init(h *Hub) {
	t.h = h
	t.upCh = make(chan struct{})
	t.lastSeen = make(map[string]time.Time)
	t.mourned = make(map[string]bool)
	t.epoch = time.Now()
	t.links = make(map[string]*link.Sender)
	t.heartbeat = h.cfg.nodeTimeout / 3
}

func (t *nodeTable) connected() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.up {
		return
	}
	t.up, t.since = true, time.Now()
	// Whatever was written to the previous connection may be lost.
	for _, l := range t.links {
		l.Rewind()
	}
	select {
	case <-t.upCh:
	default:
		close(t.upCh)
	}
}

func (t *nodeTable) disconnected() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.up = false
}

func (t *nodeTable) isConnected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.up
}

// waitConnected waits up to d for the first connection.
func (t *nodeTable) waitConnected(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.upCh:
		return t.isConnected()
	case <-timer.C:
		return false
	}
}

// hello publishes a heartbeat that asks the others to answer.
func (t *nodeTable) hello() { t.beat(true) }

func (t *nodeTable) beat(hello bool) {
	m := nats.NewMsg(t.h.hbSubject(t.h.node))
	if hello {
		m.Header.Set(helloHeader, "1")
	}
	_ = t.h.nc.PublishMsg(m) // a lost heartbeat is covered by the next
}

// onHeartbeat records that a node is alive and sends it what waited.
func (t *nodeTable) onHeartbeat(m *nats.Msg) {
	node := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if node == t.h.node {
		return
	}
	hello := m.Header.Get(helloHeader) != ""
	t.mu.Lock()
	t.lastSeen[node] = time.Now()
	if l := t.links[node]; l != nil && hello {
		// It reconnected: what we published meanwhile may be lost.
		l.Rewind()
	}
	t.flush(node)
	t.mu.Unlock()
	if hello {
		t.beat(false)
	}
}

// heard records that node sent something other than a heartbeat. It
// counts for liveness only: what makes a node reachable (its
// subscriptions restored) is its heartbeat after a reconnect.
func (t *nodeTable) heard(node string) {
	v, ok := t.sent.Load(node)
	if !ok {
		v, _ = t.sent.LoadOrStore(node, new(atomic.Int64))
	}
	v.(*atomic.Int64).Store(int64(time.Since(t.epoch)))
}

// sentAt reads an entry of t.sent.
func (t *nodeTable) sentAt(v any) time.Time {
	return t.epoch.Add(time.Duration(v.(*atomic.Int64).Load()))
}

// alive returns when node last showed it was alive (its heartbeat, or
// anything else it sent), and false for a node never heard of; the caller
// holds t.mu.
func (t *nodeTable) alive(node string) (time.Time, bool) {
	seen, ok := t.lastSeen[node]
	if v, sent := t.sent.Load(node); sent {
		if at := t.sentAt(v); !ok || at.After(seen) {
			seen, ok = at, true
		}
	}
	return seen, ok
}

// flush publishes the messages for node not published since the last
// rewind, if it can hear us; the caller holds t.mu.
func (t *nodeTable) flush(node string) {
	l := t.links[node]
	if l == nil || !t.reachable(node) {
		return
	}
	t.publish(l.Unsent())
}

// publish publishes messages in order; the caller holds t.mu.
func (t *nodeTable) publish(ms []*nats.Msg) {
	for _, m := range ms {
		// Buffered by nats.go; it fails only once closed, and what is
		// lost is published again until acknowledged.
		_ = t.h.nc.PublishMsg(m)
	}
}

// reachable says whether node was heard during this connection; the
// caller holds t.mu.
func (t *nodeTable) reachable(node string) bool {
	return t.up && t.lastSeen[node].After(t.since)
}

// send numbers m on the link to node and publishes it when node can hear
// us; it is kept until node acknowledges it. It fails when
// link.MaxPending messages, or link.MaxPendingBytes, for node wait for
// their acknowledgement.
func (t *nodeTable) send(node string, m *nats.Msg) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.link(node).Add(m, time.Now()) != nil {
		return errOutboxFull
	}
	t.flush(node)
	return nil
}

// sendLast is send for a small message that ends something (a tunnel's
// close), which there is one of per thing ended: it goes whatever the
// bounds, so that the far node learns of the end once it can hear.
func (t *nodeTable) sendLast(node string, m *nats.Msg) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.link(node).Push(m, time.Now())
	t.flush(node)
}

// link returns the link to node, starting one; the caller holds t.mu.
func (t *nodeTable) link(node string) *link.Sender {
	l := t.links[node]
	if l == nil {
		t.linkIDs++
		l = link.NewSender(t.h.node, t.linkIDs)
		t.links[node] = l
	}
	return l
}

// onAck drops what node acknowledged.
func (t *nodeTable) onAck(node string, a link.Ack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l := t.links[node]; l != nil {
		l.Ack(a, time.Now())
	}
}

// tickLinks publishes again what stays unacknowledged for too long, and
// drops the links to nodes found dead with what they held: their peers
// are gone.
func (t *nodeTable) tickLinks() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	judging := t.up && now.Sub(t.since) > t.h.cfg.nodeTimeout
	for node, l := range t.links {
		seen, ok := t.alive(node)
		if !ok {
			t.lastSeen[node] = now // never heard: a full timeout from now
		} else if judging && now.Sub(seen) > t.h.cfg.nodeTimeout {
			delete(t.links, node)
			continue
		}
		if !t.reachable(node) {
			continue
		}
		t.publish(l.Stale(now))
		t.publish(l.Unsent())
	}
}

// unacked is the number of messages waiting for node's acknowledgement,
// for tests.
func (t *nodeTable) unacked(node string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l := t.links[node]; l != nil {
		return l.Pending()
	}
	return 0
}

// judging says whether this node may declare others dead: only after it
// has itself been connected for a whole node timeout, so that everyone
// alive had the time to be heard.
func (t *nodeTable) judging() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.up && time.Since(t.since) > t.h.cfg.nodeTimeout
}

// dead says whether node has been silent for node_timeout. A node never
// heard of gets a full timeout from now.
func (t *nodeTable) dead(node string) bool {
	if node == t.h.node {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	seen, ok := t.alive(node)
	if !ok {
		t.lastSeen[node] = time.Now()
		return false
	}
	return time.Since(seen) > t.h.cfg.nodeTimeout
}

// newlyDead names the nodes heard before that fell silent since the last
// call, which calls for a sweep now rather than at the next full one.
func (t *nodeTable) newlyDead() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var found []string
	for n := range t.lastSeen {
		seen, _ := t.alive(n)
		switch {
		case time.Since(seen) <= t.h.cfg.nodeTimeout:
			delete(t.mourned, n) // heard again: falling silent is news again
		case !t.mourned[n]:
			t.mourned[n] = true
			found = append(found, n)
		}
	}
	return found
}

// forget drops what is kept about nodes silent for long, and names them.
// Like any judgement of others, only once this node has been connected
// for node_timeout itself: through its own outage everyone is silent, and
// forgetting a link would drop the frames it keeps for when NATS is back.
func (t *nodeTable) forget() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.up || time.Since(t.since) <= t.h.cfg.nodeTimeout {
		return nil
	}
	var gone []string
	for n := range t.lastSeen {
		if seen, _ := t.alive(n); time.Since(seen) > forgetAfter*t.h.cfg.nodeTimeout {
			gone = append(gone, n)
			delete(t.lastSeen, n)
			t.sent.Delete(n)
			delete(t.links, n)
			delete(t.mourned, n)
		}
	}
	// A node that sent but was never otherwise heard of.
	t.sent.Range(func(n, v any) bool {
		if _, ok := t.lastSeen[n.(string)]; !ok &&
			time.Since(t.sentAt(v)) > forgetAfter*t.h.cfg.nodeTimeout {
			t.sent.Delete(n)
		}
		return true
	})
	return gone
}
