package natshub

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// The link logic without NATS: a sender's outLink and a receiver's inLink,
// with the network played by the test (it loses, duplicates and reorders).

func linkMsg(i int) *nats.Msg {
	m := nats.NewMsg("x")
	m.Data = fmt.Append(nil, i)
	return m
}

// deliverTo hands ms to in and returns the data handled, in order.
func deliverTo(t *testing.T, in *inLink, ms ...*nats.Msg) []string {
	t.Helper()
	var out []string
	for _, m := range ms {
		s, ok := parseSeq(m.Header.Get(hdrSeq))
		if !ok {
			t.Fatalf("unreadable %s header %q", hdrSeq, m.Header.Get(hdrSeq))
		}
		if s.node != "src" {
			t.Fatalf("source %q, want src", s.node)
		}
		for _, h := range in.receive(s, m) {
			out = append(out, string(h.Data))
		}
	}
	return out
}

func same(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: handled %v, want %v", what, got, want)
	}
}

func TestLinkHandlesInOrderOnceThroughLossDuplicatesAndReordering(t *testing.T) {
	now := time.Now()
	out, in := newOutLink("src", 1), &inLink{}
	for i := range 5 {
		if err := out.add(linkMsg(i), now); err != nil {
			t.Fatal(err)
		}
	}
	sent := slices.Clone(out.unsent())
	if len(sent) != 5 || len(out.unsent()) != 0 {
		t.Fatalf("unsent %d then more, want 5 then none", len(sent))
	}
	// 1 is lost, 3 comes before 2, 0 twice.
	same(t, "0", deliverTo(t, in, sent[0]), "0")
	same(t, "a duplicate of 0", deliverTo(t, in, sent[0]))
	same(t, "3 and 2 after a gap", deliverTo(t, in, sent[3], sent[2]))
	same(t, "4 after a gap", deliverTo(t, in, sent[4]))
	if seq, ok := in.ackDue(true); !ok || seq != 1 {
		t.Fatalf("ack %d %v, want 1 (only 0 handled)", seq, ok)
	}
	out.ack(1, 1, now)
	if out.pending() != 4 {
		t.Fatalf("%d pending after the ack of 0, want 4", out.pending())
	}
	// Nothing new is acknowledged: after rtxTimeout the sender publishes
	// again all it published, oldest first.
	if s := out.stale(now.Add(rtxTimeout / 2)); s != nil {
		t.Fatalf("retransmitting %d before rtxTimeout", len(s))
	}
	again := slices.Clone(out.stale(now.Add(rtxTimeout)))
	if len(again) != 4 {
		t.Fatalf("retransmitting %d, want 4", len(again))
	}
	if s := out.stale(now.Add(rtxTimeout + rtxTimeout/2)); s != nil {
		t.Fatal("retransmitting again before another rtxTimeout")
	}
	// While nothing is acknowledged, the wait doubles: 2x, then 4x.
	if s := out.stale(now.Add(rtxTimeout + 2*rtxTimeout - time.Millisecond)); s != nil {
		t.Fatal("retransmitting again before twice rtxTimeout")
	}
	if s := out.stale(now.Add(3 * rtxTimeout)); len(s) != 4 {
		t.Fatalf("second retransmission of %d, want 4", len(s))
	}
	if s := out.stale(now.Add(7*rtxTimeout - time.Millisecond)); s != nil {
		t.Fatal("retransmitting again before four times rtxTimeout")
	}
	same(t, "the retransmission", deliverTo(t, in, again...), "1", "2", "3", "4")
	if len(in.held) != 0 {
		t.Fatalf("%d held after the gap closed", len(in.held))
	}
	seq, ok := in.ackDue(true)
	if !ok || seq != 5 {
		t.Fatalf("ack %d %v, want 5", seq, ok)
	}
	out.ack(1, seq, now)
	if out.pending() != 0 || out.stale(now.Add(time.Hour)) != nil {
		t.Fatal("acknowledged messages kept")
	}
	// A late duplicate asks for the acknowledgement again (the sender may
	// have missed it).
	same(t, "a late duplicate", deliverTo(t, in, again[0]))
	if seq, ok := in.ackDue(true); !ok || seq != 5 {
		t.Fatalf("ack after a duplicate %d %v, want 5 again", seq, ok)
	}
	if _, ok := in.ackDue(true); ok {
		t.Fatal("an acknowledgement with nothing new")
	}
}

func TestLinkRewindPublishesEverythingUnacknowledged(t *testing.T) {
	now := time.Now()
	out, in := newOutLink("src", 1), &inLink{}
	for i := range 3 {
		_ = out.add(linkMsg(i), now)
	}
	first := slices.Clone(out.unsent())
	same(t, "0", deliverTo(t, in, first[0]), "0")
	out.ack(1, 1, now)
	_ = out.add(linkMsg(3), now)
	out.rewind() // a reconnect: 1 and 2 may be lost
	same(t, "after the rewind", deliverTo(t, in, out.unsent()...), "1", "2", "3")
}

func TestLinkBoundsWhatWaitsForAnAcknowledgement(t *testing.T) {
	now := time.Now()
	out := newOutLink("src", 1)
	for i := range maxOutbox {
		if err := out.add(linkMsg(i), now); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := out.add(linkMsg(maxOutbox), now); err != errOutboxFull {
		t.Fatalf("one more: %v, want errOutboxFull", err)
	}
	out.ack(1, 10, now)
	if err := out.add(linkMsg(maxOutbox), now); err != nil {
		t.Fatalf("after an acknowledgement: %v", err)
	}
	// Acknowledgements of another link, of nothing new or of what was
	// never sent change nothing.
	for _, a := range [][2]uint64{{2, 20}, {1, 5}, {1, maxOutbox + 2}} {
		out.ack(a[0], a[1], now)
		if out.pending() != maxOutbox-9 {
			t.Fatalf("ack %v: %d pending, want %d", a, out.pending(), maxOutbox-9)
		}
	}
}

func TestLinkAcknowledgesEveryFewHundredWithoutTheTick(t *testing.T) {
	now := time.Now()
	out, in := newOutLink("src", 1), &inLink{}
	for i := range ackEvery {
		_ = out.add(linkMsg(i), now)
	}
	ms := out.unsent()
	deliverTo(t, in, ms[:ackEvery-1]...)
	if _, ok := in.ackDue(false); ok {
		t.Fatal("an acknowledgement before ackEvery messages")
	}
	deliverTo(t, in, ms[ackEvery-1])
	if seq, ok := in.ackDue(false); !ok || seq != ackEvery {
		t.Fatalf("ack %d %v, want %d", seq, ok, ackEvery)
	}
}

// A receiver that forgot a link (or a sender that started a new one after
// giving the receiver up) resumes from the sender's acknowledged sequence
// number; messages of an older link are ignored.
func TestLinkNewLinksAndForgottenState(t *testing.T) {
	now := time.Now()
	out := newOutLink("src", 1)
	for i := range 4 {
		_ = out.add(linkMsg(i), now)
	}
	ms := slices.Clone(out.unsent())
	out.ack(1, 2, now) // 0 and 1 were handled by a receiver that then forgot
	_ = out.add(linkMsg(4), now)
	ms = append(ms, out.unsent()...)
	in := &inLink{}
	same(t, "a forgetful receiver", deliverTo(t, in, ms[4], ms[2], ms[3]), "2", "3", "4")
	// The sender starts link 2 (it took the receiver for dead).
	next := newOutLink("src", 2)
	_ = next.add(linkMsg(100), now)
	same(t, "a new link", deliverTo(t, in, next.unsent()...), "100")
	old := newOutLink("src", 1)
	_ = old.add(linkMsg(-1), now)
	same(t, "an older link", deliverTo(t, in, old.unsent()...))
}

// bigMsg is a message of size bytes of data, named i in a header (the
// data is shared, so many cost nothing).
func bigMsg(i, size int) *nats.Msg {
	m := nats.NewMsg("x")
	m.Header.Set("I", fmt.Sprint(i))
	m.Data = bigData[:size]
	return m
}

var bigData = make([]byte, 64<<10)

func names(ms []*nats.Msg) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Header.Get("I"))
	}
	return out
}

// Large messages are bounded in bytes as well as in number: 4096 frames
// of 64 KiB would be 256 MiB waiting for one unreachable server.
func TestLinkBoundsWhatWaitsInBytes(t *testing.T) {
	now := time.Now()
	const size = 64 << 10
	fit := maxOutboxBytes / size
	if fit >= maxOutbox {
		t.Fatalf("%d frames of %d bytes fit in maxOutboxBytes: the count binds first", fit, size)
	}
	out := newOutLink("src", 1)
	for i := range fit {
		if err := out.add(bigMsg(i, size), now); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := out.add(bigMsg(fit, size), now); err != errOutboxFull {
		t.Fatalf("one more beyond %d bytes: %v, want errOutboxFull", maxOutboxBytes, err)
	}
	if err := out.add(bigMsg(fit, 1), now); err != errOutboxFull {
		t.Fatalf("a byte more: %v, want errOutboxFull", err)
	}
	out.ack(1, 2, now)
	for i := range 2 {
		if err := out.add(bigMsg(fit+i, size), now); err != nil {
			t.Fatalf("after an acknowledgement of two, message %d: %v", i, err)
		}
	}
	if err := out.add(bigMsg(fit+2, size), now); err != errOutboxFull {
		t.Fatalf("beyond the bound again: %v, want errOutboxFull", err)
	}
	// What ends something goes whatever the bounds.
	out.push(bigMsg(-1, 10), now)
	if out.pending() != fit+1 {
		t.Fatalf("%d pending, want %d", out.pending(), fit+1)
	}
	// An empty link takes one message of any size, and then no other.
	empty := newOutLink("src", 1)
	huge := nats.NewMsg("x")
	huge.Data = make([]byte, maxOutboxBytes+1)
	if err := empty.add(huge, now); err != nil {
		t.Fatalf("one huge message on an empty link: %v", err)
	}
	if err := empty.add(linkMsg(0), now); err != errOutboxFull {
		t.Fatalf("after a huge message: %v, want errOutboxFull", err)
	}
}

// A receiver holds early messages within maxHeldBytes too; those beyond
// are dropped and handled when the sender publishes them again.
func TestLinkHoldsEarlyMessagesWithinBytes(t *testing.T) {
	now := time.Now()
	const size = 64 << 10
	fit := maxHeldBytes / size
	out, in := newOutLink("src", 1), &inLink{}
	out.maxBytes = 2 * maxHeldBytes // a sender's bound is not the case here
	for i := range fit + 9 {
		if err := out.add(bigMsg(i, size), now); err != nil {
			t.Fatal(err)
		}
	}
	sent := slices.Clone(out.unsent())
	handle := func(ms ...*nats.Msg) []string {
		var got []*nats.Msg
		for _, m := range ms {
			s, _ := parseSeq(m.Header.Get(hdrSeq))
			got = append(got, in.receive(s, m)...)
		}
		return names(got)
	}
	// The first is lost: all the others come early.
	same(t, "early messages", handle(sent[1:]...))
	if len(in.held) != fit || in.bytes != fit*size {
		t.Fatalf("holding %d messages, %d bytes; want %d, %d", len(in.held), in.bytes, fit, fit*size)
	}
	var want []string
	for i := range fit + 1 {
		want = append(want, fmt.Sprint(i))
	}
	same(t, "the gap filled", handle(sent[0]), want...)
	if len(in.held) != 0 || in.bytes != 0 {
		t.Fatalf("still holding %d messages, %d bytes", len(in.held), in.bytes)
	}
	want = want[:0]
	for i := fit + 1; i < fit+9; i++ {
		want = append(want, fmt.Sprint(i))
	}
	same(t, "the dropped ones published again", handle(sent[fit+1:]...), want...)
}

// A node's own outage, however long, makes it forget no other node, nor
// the frames it keeps for one: only once connected for node_timeout does
// it judge others, as tickLinks and sweeps do.
func TestNodesAreNotForgottenThroughOwnOutage(t *testing.T) {
	h := &Hub{node: "self"}
	h.cfg.nodeTimeout = 100 * time.Millisecond
	var nt nodeTable
	nt.init(h)
	nt.lastSeen["other"] = time.Now().Add(-time.Hour)
	nt.links["other"] = newOutLink("self", 1)
	if gone := nt.forget(); len(gone) != 0 {
		t.Fatalf("forgot %v while not connected", gone)
	}
	nt.connected()
	if gone := nt.forget(); len(gone) != 0 {
		t.Fatalf("forgot %v just after connecting", gone)
	}
	nt.since = time.Now().Add(-time.Second)
	if gone := nt.forget(); len(gone) != 1 || nt.links["other"] != nil {
		t.Fatalf("forgot %v once connected for long; want other, and its link", gone)
	}
}
