package link

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	// hdrSeq carries "<source node> <link> <seq> <acked>" on a message, and
	// "<source node> <link> <seq>" on an acknowledgement.
	hdrSeq = "S"

	// Tick is how often the owner sends the acknowledgements due
	// (Receiver.Acks) and considers retransmissions (Sender.Stale): often
	// enough that a sender's rtxTimeout is not reached on a live link.
	Tick = 100 * time.Millisecond
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

// Seq is what a message's sequence header says.
type Seq struct {
	Node      string // the node that sent the message
	Link, Seq uint64
	Acked     uint64 // on messages: the sender's acknowledged sequence number
}

// Parse reads m's sequence header; it fails for a message not sent on a
// link, which its owner handles as it comes.
func Parse(m *nats.Msg) (Seq, bool) {
	f := strings.Fields(m.Header.Get(hdrSeq))
	if len(f) != 3 && len(f) != 4 {
		return Seq{}, false
	}
	var s Seq
	var err error
	s.Node = f[0]
	if s.Link, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return Seq{}, false
	}
	if s.Seq, err = strconv.ParseUint(f[2], 10, 64); err != nil {
		return Seq{}, false
	}
	if len(f) == 4 {
		if s.Acked, err = strconv.ParseUint(f[3], 10, 64); err != nil {
			return Seq{}, false
		}
	}
	return s, true
}

// Ack is a cumulative acknowledgement: every message up to Seq of link
// Link was handled.
type Ack struct {
	Link, Seq uint64
}

// SetAck writes on m the acknowledgement a from node, the link's
// destination. An acknowledgement is not itself sequenced (a lost one is
// covered by the next), and Parse reads it like a message's header: its
// owner marks it as an acknowledgement so the sender can tell the two
// apart.
func SetAck(m *nats.Msg, node string, a Ack) {
	m.Header.Set(hdrSeq, node+" "+strconv.FormatUint(a.Link, 10)+" "+strconv.FormatUint(a.Seq, 10))
}
