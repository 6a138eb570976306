package natshub

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// errOutboxFull means frames for a node piled up while it could not be
// reached; the frame is dropped.
var errOutboxFull = errors.New("signaling hub: too many frames waiting for an unreachable server")

const (
	// maxOutbox bounds the messages kept for one node while it cannot be
	// reached (about a minute of a busy room's signaling).
	maxOutbox = 4096
	// helloHeader marks the heartbeat a node sends when it (re)connects;
	// the others answer with one of their own at once.
	helloHeader = "Hello"
	// forgetAfter, in node timeouts, is when a silent node's record goes.
	forgetAfter = 3
)

// nodeTable is what this node knows of the others: when each was last
// heard, and messages held back for those not known to hear us yet.
//
// A message to node N is published at once only when this node has heard
// N since its own current connection began. Otherwise (we or N just
// reconnected) it waits here, in order, until N's heartbeat shows that N
// is subscribed again: a message published before that would be lost.
type nodeTable struct {
	h         *Hub
	mu        sync.Mutex
	up        bool
	since     time.Time // start of the current connection
	upCh      chan struct{}
	lastSeen  map[string]time.Time
	mourned   map[string]bool // silent nodes a sweep was started for
	outbox    map[string][]*nats.Msg
	heartbeat time.Duration
}

func (t *nodeTable) init(h *Hub) {
	t.h = h
	t.upCh = make(chan struct{})
	t.lastSeen = make(map[string]time.Time)
	t.mourned = make(map[string]bool)
	t.outbox = make(map[string][]*nats.Msg)
	t.heartbeat = h.cfg.nodeTimeout / 3
}

func (t *nodeTable) connected() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.up {
		return
	}
	t.up, t.since = true, time.Now()
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
	t.mu.Lock()
	t.lastSeen[node] = time.Now()
	t.flush(node)
	t.mu.Unlock()
	if m.Header.Get(helloHeader) != "" {
		t.beat(false)
	}
}

// flush publishes the messages held for node if it can hear us; the
// caller holds t.mu.
func (t *nodeTable) flush(node string) {
	if !t.reachable(node) {
		return
	}
	for _, m := range t.outbox[node] {
		_ = t.h.nc.PublishMsg(m) // buffered by nats.go; fails only once closed
	}
	delete(t.outbox, node)
}

// reachable says whether node was heard during this connection; the
// caller holds t.mu.
func (t *nodeTable) reachable(node string) bool {
	return t.up && t.lastSeen[node].After(t.since)
}

// send publishes m to node, or keeps it until node can hear us.
func (t *nodeTable) send(node string, m *nats.Msg) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	q := t.outbox[node]
	if len(q) == 0 && t.reachable(node) {
		return t.h.nc.PublishMsg(m)
	}
	if len(q) >= maxOutbox {
		return errOutboxFull
	}
	t.outbox[node] = append(q, m)
	return nil
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
	seen, ok := t.lastSeen[node]
	if !ok {
		t.lastSeen[node] = time.Now()
		return false
	}
	return time.Since(seen) > t.h.cfg.nodeTimeout
}

// newlyDead says whether a node heard before has fallen silent since the
// last call, which calls for a sweep now rather than at the next full one.
func (t *nodeTable) newlyDead() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	found := false
	for n, seen := range t.lastSeen {
		if time.Since(seen) > t.h.cfg.nodeTimeout && !t.mourned[n] {
			t.mourned[n], found = true, true
		}
	}
	return found
}

// forget drops what is kept about nodes silent for long.
func (t *nodeTable) forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for n, seen := range t.lastSeen {
		if time.Since(seen) > forgetAfter*t.h.cfg.nodeTimeout {
			delete(t.lastSeen, n)
			delete(t.outbox, n)
			delete(t.mourned, n)
		}
	}
}
