package natshub

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Reliable links: core NATS delivers at most once, so a message a node had
// written to a NATS server that then died is lost. Every message one node
// sends another (frames, room snapshots, tunnel messages) therefore goes
// on a link: the sender numbers it and keeps it until the destination
// acknowledges it; the destination handles each source's messages strictly
// in sequence, drops duplicates, holds early ones until the gap is filled
// and acknowledges cumulatively. The sender publishes again what is not
// acknowledged after every reconnect (its own, once the destination can
// hear it, or the destination's, on its hello) and when acknowledgements
// stop coming for rtxTimeout.
//
// A link is identified by the sending node and a link number the sender
// raises each time it starts a new link to a node (after it gave the
// destination up as dead): a destination that sees a higher number starts
// over from the sender's acknowledged sequence number, carried by every
// message, and ignores messages of older links.

const (
	// hdrSeq carries "<source node> <link> <seq> <acked>" on a message, and
	// "<source node> <link> <seq>" on an acknowledgement.
	hdrSeq = "S"
	// kindAck is a cumulative acknowledgement, sent to the source's node
	// subject; it is not itself sequenced.
	kindAck = "a"

	// linkTick is how often acknowledgements go out (when there is
	// something new to acknowledge) and retransmissions are considered.
	linkTick = 100 * time.Millisecond
	// ackEvery acknowledges at once after this many new messages, so a
	// fast sender's window does not fill up between ticks.
	ackEvery = 256
	// rtxTimeout is how long a sender waits for its acknowledgements to
	// advance before it publishes the unacknowledged messages again.
	rtxTimeout = 750 * time.Millisecond
	// maxRtxWait bounds the wait between retransmissions, which doubles
	// from rtxTimeout while nothing is acknowledged (a destination that
	// died is not flooded until it is found dead).
	maxRtxWait = 6 * time.Second
)

// outLink is the sending side of a link to one node. Its messages queue
// holds the unacknowledged ones, sequence numbers acked+1 on; the first
// flushed of them have been published since the last rewind.
type outLink struct {
	src      string // this node
	id       uint64 // link number
	next     uint64 // sequence number of the next message
	acked    uint64 // highest sequence number acknowledged
	queue    []*nats.Msg
	bytes    int // of the queued messages' data
	flushed  int
	progress time.Time     // when acked last advanced, or the queue filled from empty
	resent   time.Time     // when stale messages were last published again
	wait     time.Duration // before the next retransmission; 0: rtxTimeout

	// maxLen and maxBytes bound the queue: maxOutbox and maxOutboxBytes
	// (a test lowers them to make a link refuse messages).
	maxLen, maxBytes int
}

func newOutLink(src string, id uint64) *outLink {
	return &outLink{src: src, id: id, next: 1, maxLen: maxOutbox, maxBytes: maxOutboxBytes}
}

// add numbers m and queues it; it fails when maxOutbox messages, or
// maxOutboxBytes, wait for an acknowledgement. An empty link takes a
// message of any size.
func (l *outLink) add(m *nats.Msg, now time.Time) error {
	if len(l.queue) >= l.maxLen || len(l.queue) > 0 && l.bytes+len(m.Data) > l.maxBytes {
		return errOutboxFull
	}
	l.push(m, now)
	return nil
}

// push numbers m and queues it, whatever the bounds.
func (l *outLink) push(m *nats.Msg, now time.Time) {
	m.Header.Set(hdrSeq, l.src+" "+strconv.FormatUint(l.id, 10)+" "+
		strconv.FormatUint(l.next, 10)+" "+strconv.FormatUint(l.acked, 10))
	l.next++
	if len(l.queue) == 0 {
		l.progress = now
	}
	l.queue = append(l.queue, m)
	l.bytes += len(m.Data)
}

// unsent returns the queued messages not published since the last rewind
// and counts them as published.
func (l *outLink) unsent() []*nats.Msg {
	out := l.queue[l.flushed:]
	l.flushed = len(l.queue)
	return out
}

// rewind makes every unacknowledged message unsent again: after a
// reconnect, any of them may have been lost.
func (l *outLink) rewind() { l.flushed, l.wait = 0, 0 }

// ack drops the messages up to seq of link id.
func (l *outLink) ack(id, seq uint64, now time.Time) {
	if id != l.id || seq <= l.acked || seq >= l.next {
		return
	}
	n := int(seq - l.acked)
	for _, m := range l.queue[:n] {
		l.bytes -= len(m.Data)
	}
	clear(l.queue[:n])
	l.queue = l.queue[n:]
	l.acked = seq
	l.flushed = max(0, l.flushed-n)
	l.progress, l.wait = now, 0
}

// stale returns the published messages to publish again when no
// acknowledgement advanced for rtxTimeout, oldest first; while none does,
// the wait between retransmissions doubles up to maxRtxWait.
func (l *outLink) stale(now time.Time) []*nats.Msg {
	wait := max(l.wait, rtxTimeout)
	if l.flushed == 0 || now.Sub(l.progress) < rtxTimeout || now.Sub(l.resent) < wait {
		return nil
	}
	l.resent, l.wait = now, min(2*wait, maxRtxWait)
	return l.queue[:l.flushed]
}

// pending is the number of unacknowledged messages.
func (l *outLink) pending() int { return len(l.queue) }

// maxHeldBytes bounds the data of the early messages an inLink holds, as
// maxOutbox bounds their number: what a sender may have unacknowledged
// (maxOutboxBytes). Beyond it, early messages are dropped; the sender
// publishes them again.
const maxHeldBytes = maxOutboxBytes

// inLink is the receiving side of a link from one node.
type inLink struct {
	id    uint64 // link number
	done  uint64 // highest sequence number handled, all below it too
	held  map[uint64]*nats.Msg
	bytes int    // of the held messages' data
	acked uint64 // done as last acknowledged
	due   bool   // a duplicate came: acknowledge again even if done did not move
}

// seqInfo is what hdrSeq says.
type seqInfo struct {
	node      string
	link, seq uint64
	acked     uint64 // on messages: the sender's acknowledged sequence number
}

func parseSeq(v string) (seqInfo, bool) {
	f := strings.Fields(v)
	if len(f) != 3 && len(f) != 4 {
		return seqInfo{}, false
	}
	var s seqInfo
	var err error
	s.node = f[0]
	if s.link, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return seqInfo{}, false
	}
	if s.seq, err = strconv.ParseUint(f[2], 10, 64); err != nil {
		return seqInfo{}, false
	}
	if len(f) == 4 {
		if s.acked, err = strconv.ParseUint(f[3], 10, 64); err != nil {
			return seqInfo{}, false
		}
	}
	return s, true
}

// receive takes message m numbered s and returns the messages to handle
// now, in order: m and any held ones it makes contiguous; none for a
// duplicate, an early message (held, within maxOutbox and maxHeldBytes)
// or one of an older link.
func (l *inLink) receive(s seqInfo, m *nats.Msg) []*nats.Msg {
	switch {
	case s.link < l.id:
		return nil
	case s.link > l.id:
		// A new link: what came before its acknowledged sequence number
		// was handled by this node's earlier state of it.
		l.id, l.done, l.acked, l.held, l.bytes = s.link, s.acked, s.acked, nil, 0
	}
	if s.acked > l.done {
		// Handled (it was acknowledged) before this node forgot the link.
		l.done = s.acked
		for q := range l.held {
			if q <= l.done {
				l.unhold(q)
			}
		}
	}
	if s.seq <= l.done {
		l.due = true
		return nil
	}
	if s.seq > l.done+1 {
		l.hold(s.seq, m)
		return nil
	}
	out := []*nats.Msg{m}
	l.done = s.seq
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

// hold keeps an early message, within maxOutbox messages and
// maxHeldBytes (none held, it takes one of any size); one beyond them is
// dropped, to come again.
func (l *inLink) hold(seq uint64, m *nats.Msg) {
	_, dup := l.held[seq]
	if dup || len(l.held) >= maxOutbox || len(l.held) > 0 && l.bytes+len(m.Data) > maxHeldBytes {
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

// inTable holds the receiving sides of the links from other nodes. Only
// the subscription's dispatcher adds to it, so messages are handled one at
// a time; the lock is for the acknowledging tick.
type inTable struct {
	mu    sync.Mutex
	links map[string]*inLink
}

// receive returns the messages to handle now for m, and an
// acknowledgement (link and sequence number) to send at once if many are
// unacknowledged.
func (t *inTable) receive(s seqInfo, m *nats.Msg) (out []*nats.Msg, link, ackSeq uint64, ack bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.links == nil {
		t.links = make(map[string]*inLink)
	}
	l := t.links[s.node]
	if l == nil {
		l = &inLink{}
		t.links[s.node] = l
	}
	out = l.receive(s, m)
	ackSeq, ack = l.ackDue(false)
	return out, l.id, ackSeq, ack
}

// acks returns the acknowledgements due on the tick, by source node.
func (t *inTable) acks() map[string][2]uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out map[string][2]uint64
	for node, l := range t.links {
		if seq, ok := l.ackDue(true); ok {
			if out == nil {
				out = make(map[string][2]uint64)
			}
			out[node] = [2]uint64{l.id, seq}
		}
	}
	return out
}

// forget drops the links from the given nodes.
func (t *inTable) forget(nodes []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range nodes {
		delete(t.links, n)
	}
}

// sendAck acknowledges everything up to seq of a link from node.
func (h *Hub) sendAck(node string, link, seq uint64) {
	m := nats.NewMsg(h.nodeSubject(node))
	m.Header.Set(hdrKind, kindAck)
	m.Header.Set(hdrSeq, h.node+" "+strconv.FormatUint(link, 10)+" "+strconv.FormatUint(seq, 10))
	_ = h.nc.PublishMsg(m) // a lost acknowledgement is covered by the next
}

// linkLoop acknowledges and retransmits every linkTick until stop.
func (h *Hub) linkLoop(stop <-chan struct{}) {
	ticker := time.NewTicker(linkTick)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			for node, a := range h.inbound.acks() {
				h.sendAck(node, a[0], a[1])
			}
			h.nodes.tickLinks()
		}
	}
}
