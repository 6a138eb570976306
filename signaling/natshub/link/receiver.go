package link

import (
	"sync"

	"github.com/nats-io/nats.go"
)

// maxHeldBytes bounds the data of the early messages an inLink holds, as
// MaxPending bounds their number: what a sender may have unacknowledged
// (MaxPendingBytes). Beyond it, early messages are dropped; the sender
// publishes them again.
const maxHeldBytes = MaxPendingBytes

// inLink is the receiving side of a link from one node.
type inLink struct {
	id    uint64 // link number
	done  uint64 // highest sequence number handled, all below it too
	held  map[uint64]*nats.Msg
	bytes int    // of the held messages' data
	acked uint64 // done as last acknowledged
	due   bool   // a duplicate came: acknowledge again even if done did not move
}

// receive takes message m numbered s and returns the messages to handle
// now, in order: m and any held ones it makes contiguous; none for a
// duplicate, an early message (held, within MaxPending and maxHeldBytes)
// or one of an older link.
func (l *inLink) receive(s Seq, m *nats.Msg) []*nats.Msg {
	switch {
	case s.Link < l.id:
		return nil
	case s.Link > l.id:
		// A new link: what came before its acknowledged sequence number
		// was handled by this node's earlier state of it.
		l.id, l.done, l.acked, l.held, l.bytes = s.Link, s.Acked, s.Acked, nil, 0
	}
	if s.Acked > l.done {
		// Handled (it was acknowledged) before this node forgot the link.
		l.done = s.Acked
		for q := range l.held {
			if q <= l.done {
				l.unhold(q)
			}
		}
	}
	if s.Seq <= l.done {
		l.due = true
		return nil
	}
	if s.Seq > l.done+1 {
		l.hold(s.Seq, m)
		return nil
	}
	out := []*nats.Msg{m}
	l.done = s.Seq
	for {
		next := l.unhold(l.done + 1)
		if next == nil {
			break
		}
		out = append(out, next)
		l.done++
	}
	return out
}

// hold keeps an early message, within MaxPending messages and
// maxHeldBytes (none held, it takes one of any size); one beyond them is
// dropped, to come again.
func (l *inLink) hold(seq uint64, m *nats.Msg) {
	_, dup := l.held[seq]
	if dup || len(l.held) >= MaxPending || len(l.held) > 0 && l.bytes+len(m.Data) > maxHeldBytes {
		return
	}
	if l.held == nil {
		l.held = make(map[uint64]*nats.Msg)
	}
	l.held[seq] = m
	l.bytes += len(m.Data)
}

// unhold takes a held message out, or returns nil.
func (l *inLink) unhold(seq uint64) *nats.Msg {
	m := l.held[seq]
	if m != nil {
		delete(l.held, seq)
		l.bytes -= len(m.Data)
	}
	return m
}

// ackDue says whether an acknowledgement should go out: force for one
// on the tick, otherwise only once ackEvery messages are unacknowledged.
// It returns the sequence number to acknowledge and records it as sent.
func (l *inLink) ackDue(force bool) (uint64, bool) {
	n := l.done - l.acked
	if n == 0 && !l.due || !force && n < ackEvery {
		return 0, false
	}
	l.acked, l.due = l.done, false
	return l.done, true
}

// Receiver holds the receiving sides of the links from other nodes; its
// zero value is ready. Only one goroutine (the subscription's dispatcher)
// may call Receive, so messages are handled one at a time in each
// source's order; the lock is for the acknowledging tick (Acks) and
// Forget.
type Receiver struct {
	mu    sync.Mutex
	links map[string]*inLink
}

// Receive takes message m, whose header Parse read as s, and returns the
// messages to handle now, in order, and an acknowledgement to send to
// s.Node at once if ok: many are unacknowledged, and waiting for the
// tick could fill the sender's window.
func (t *Receiver) Receive(s Seq, m *nats.Msg) (out []*nats.Msg, a Ack, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.links == nil {
		t.links = make(map[string]*inLink)
	}
	l := t.links[s.Node]
	if l == nil {
		l = &inLink{}
		t.links[s.Node] = l
	}
	out = l.receive(s, m)
	seq, ok := l.ackDue(false)
	return out, Ack{Link: l.id, Seq: seq}, ok
}

// Acks returns the acknowledgements due on the tick, by source node.
func (t *Receiver) Acks() map[string]Ack {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out map[string]Ack
	for node, l := range t.links {
		if seq, ok := l.ackDue(true); ok {
			if out == nil {
				out = make(map[string]Ack)
			}
			out[node] = Ack{Link: l.id, Seq: seq}
		}
	}
	return out
}

// Forget drops the links from the given nodes, found dead: their state
// would otherwise be kept forever.
func (t *Receiver) Forget(nodes []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range nodes {
		delete(t.links, n)
	}
}
