package link

import (
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrFull means MaxPending messages, or MaxPendingBytes, wait for the
// destination's acknowledgement (it could not be reached); the message
// was not taken.
var ErrFull = errors.New("link: too many messages waiting for an acknowledgement")

const (
	// MaxPending bounds the messages a Sender keeps until they are
	// acknowledged (about a minute of a busy room's signaling while the
	// destination cannot be reached), and the early ones a Receiver holds.
	MaxPending = 4096
	// MaxPendingBytes bounds the same in bytes (of the messages' data).
	// Signaling frames are mostly under 1 KiB, SDP a few KiB: 4096 of them
	// take a few MiB, so the count binds first for real traffic. But 4096
	// frames of the default max_message_size (64 KiB) would be 256 MiB per
	// other server through an outage; 32 MiB keeps a Caddy talking to a
	// few unreachable servers within memory it can spare, and still holds
	// 512 such frames.
	MaxPendingBytes = 32 << 20
)

// Sender is the sending side of a link to one node. It does not lock:
// its owner serializes calls, with whatever decides when the destination
// can hear. Its messages queue holds the unacknowledged ones, sequence
// numbers acked+1 on; the first flushed of them have been published since
// the last rewind.
type Sender struct {
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

	// maxLen and maxBytes bound the queue: MaxPending and MaxPendingBytes
	// unless Limit lowered them.
	maxLen, maxBytes int
}

// NewSender starts link id from node src. id must be higher than that of
// any earlier link from src to the same destination, which then starts
// over rather than waiting for what an older link held.
func NewSender(src string, id uint64) *Sender {
	return &Sender{src: src, id: id, next: 1, maxLen: MaxPending, maxBytes: MaxPendingBytes}
}

// Limit sets the bounds Add applies, for tests that make a link refuse
// messages.
func (l *Sender) Limit(messages, bytes int) { l.maxLen, l.maxBytes = messages, bytes }

// Add numbers m and queues it; it fails with ErrFull when MaxPending
// messages, or MaxPendingBytes, wait for an acknowledgement. An empty
// link takes a message of any size, so that no message is too big ever
// to go.
func (l *Sender) Add(m *nats.Msg, now time.Time) error {
	if len(l.queue) >= l.maxLen || len(l.queue) > 0 && l.bytes+len(m.Data) > l.maxBytes {
		return ErrFull
	}
	l.Push(m, now)
	return nil
}

// Push numbers m and queues it, whatever the bounds: for a small message
// that ends something, of which there is one per thing ended, so that the
// destination learns of the end.
func (l *Sender) Push(m *nats.Msg, now time.Time) {
	m.Header.Set(hdrSeq, l.src+" "+strconv.FormatUint(l.id, 10)+" "+
		strconv.FormatUint(l.next, 10)+" "+strconv.FormatUint(l.acked, 10))
	l.next++
	if len(l.queue) == 0 {
		l.progress = now
	}
	l.queue = append(l.queue, m)
	l.bytes += len(m.Data)
}

// Unsent returns the queued messages not published since the last rewind
// and counts them as published: the owner publishes them, in order, once
// the destination can hear.
func (l *Sender) Unsent() []*nats.Msg {
	out := l.queue[l.flushed:]
	l.flushed = len(l.queue)
	return out
}

// Rewind makes every unacknowledged message unsent again: after a
// reconnect of either node, any of them may have been lost.
func (l *Sender) Rewind() { l.flushed, l.wait = 0, 0 }

// Ack drops the messages a acknowledges; one of another link, of nothing
// new or of what was never sent changes nothing.
func (l *Sender) Ack(a Ack, now time.Time) {
	if a.Link != l.id || a.Seq <= l.acked || a.Seq >= l.next {
		return
	}
	n := int(a.Seq - l.acked)
	for _, m := range l.queue[:n] {
		l.bytes -= len(m.Data)
	}
	clear(l.queue[:n])
	l.queue = l.queue[n:]
	l.acked = a.Seq
	l.flushed = max(0, l.flushed-n)
	l.progress, l.wait = now, 0
}

// Stale returns the published messages to publish again when no
// acknowledgement advanced for rtxTimeout, oldest first; while none does,
// the wait between retransmissions doubles up to maxRtxWait.
func (l *Sender) Stale(now time.Time) []*nats.Msg {
	wait := max(l.wait, rtxTimeout)
	if l.flushed == 0 || now.Sub(l.progress) < rtxTimeout || now.Sub(l.resent) < wait {
		return nil
	}
	l.resent, l.wait = now, min(2*wait, maxRtxWait)
	return l.queue[:l.flushed]
}

// Pending is the number of unacknowledged messages.
func (l *Sender) Pending() int { return len(l.queue) }
