package link

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// The link logic without NATS: a Sender and a receiver's inLink,
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
		s, ok := Parse(m)
		if !ok {
			t.Fatalf("unreadable %s header %q", hdrSeq, m.Header.Get(hdrSeq))
		}
		if s.Node != "src" {
			t.Fatalf("source %q, want src", s.Node)
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
	out, in := NewSender("src", 1), &inLink{}
	for i := range 5 {
		if err := out.Add(linkMsg(i), now); err != nil {
			t.Fatal(err)
		}
	}
	sent := slices.Clone(out.Unsent())
	if len(sent) != 5 || len(out.Unsent()) != 0 {
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
	out.Ack(Ack{1, 1}, now)
	if out.Pending() != 4 {
		t.Fatalf("%d pending after the ack of 0, want 4", out.Pending())
	}
	// Nothing new is acknowledged: after rtxTimeout the sender publishes
	// again all it published, oldest first.
	if s := out.Stale(now.Add(rtxTimeout / 2)); s != nil {
		t.Fatalf("retransmitting %d before rtxTimeout", len(s))
	}
	again := slices.Clone(out.Stale(now.Add(rtxTimeout)))
	if len(again) != 4 {
		t.Fatalf("retransmitting %d, want 4", len(again))
	}
	if s := out.Stale(now.Add(rtxTimeout + rtxTimeout/2)); s != nil {
		t.Fatal("retransmitting again before another rtxTimeout")
	}
	// While nothing is acknowledged, the wait doubles: 2x, then 4x.
	if s := out.Stale(now.Add(rtxTimeout + 2*rtxTimeout - time.Millisecond)); s != nil {
		t.Fatal("retransmitting again before twice rtxTimeout")
	}
	if s := out.Stale(now.Add(3 * rtxTimeout)); len(s) != 4 {
		t.Fatalf("second retransmission of %d, want 4", len(s))
	}
	if s := out.Stale(now.Add(7*rtxTimeout - time.Millisecond)); s != nil {
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
	out.Ack(Ack{1, seq}, now)
	if out.Pending() != 0 || out.Stale(now.Add(time.Hour)) != nil {
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
	out, in := NewSender("src", 1), &inLink{}
	for i := range 3 {
		_ = out.Add(linkMsg(i), now)
	}
	first := slices.Clone(out.Unsent())
	same(t, "0", deliverTo(t, in, first[0]), "0")
	out.Ack(Ack{1, 1}, now)
	_ = out.Add(linkMsg(3), now)
	out.Rewind() // a reconnect: 1 and 2 may be lost
	same(t, "after the rewind", deliverTo(t, in, out.Unsent()...), "1", "2", "3")
}

func TestLinkBoundsWhatWaitsForAnAcknowledgement(t *testing.T) {
	now := time.Now()
	out := NewSender("src", 1)
	for i := range MaxPending {
		if err := out.Add(linkMsg(i), now); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := out.Add(linkMsg(MaxPending), now); err != ErrFull {
		t.Fatalf("one more: %v, want ErrFull", err)
	}
	out.Ack(Ack{1, 10}, now)
	if err := out.Add(linkMsg(MaxPending), now); err != nil {
		t.Fatalf("after an acknowledgement: %v", err)
	}
	// Acknowledgements of another link, of nothing new or of what was
	// never sent change nothing.
	for _, a := range []Ack{{2, 20}, {1, 5}, {1, MaxPending + 2}} {
		out.Ack(a, now)
		if out.Pending() != MaxPending-9 {
			t.Fatalf("ack %v: %d pending, want %d", a, out.Pending(), MaxPending-9)
		}
	}
}

func TestLinkAcknowledgesEveryFewHundredWithoutTheTick(t *testing.T) {
	now := time.Now()
	out, in := NewSender("src", 1), &inLink{}
	for i := range ackEvery {
		_ = out.Add(linkMsg(i), now)
	}
	ms := out.Unsent()
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
	out := NewSender("src", 1)
	for i := range 4 {
		_ = out.Add(linkMsg(i), now)
	}
	ms := slices.Clone(out.Unsent())
	out.Ack(Ack{1, 2}, now) // 0 and 1 were handled by a receiver that then forgot
	_ = out.Add(linkMsg(4), now)
	ms = append(ms, out.Unsent()...)
	in := &inLink{}
	same(t, "a forgetful receiver", deliverTo(t, in, ms[4], ms[2], ms[3]), "2", "3", "4")
	// The sender starts link 2 (it took the receiver for dead).
	next := NewSender("src", 2)
	_ = next.Add(linkMsg(100), now)
	same(t, "a new link", deliverTo(t, in, next.Unsent()...), "100")
	old := NewSender("src", 1)
	_ = old.Add(linkMsg(-1), now)
	same(t, "an older link", deliverTo(t, in, old.Unsent()...))
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
	fit := MaxPendingBytes / size
	if fit >= MaxPending {
		t.Fatalf("%d frames of %d bytes fit in MaxPendingBytes: the count binds first", fit, size)
	}
	out := NewSender("src", 1)
	for i := range fit {
		if err := out.Add(bigMsg(i, size), now); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := out.Add(bigMsg(fit, size), now); err != ErrFull {
		t.Fatalf("one more beyond %d bytes: %v, want ErrFull", MaxPendingBytes, err)
	}
	if err := out.Add(bigMsg(fit, 1), now); err != ErrFull {
		t.Fatalf("a byte more: %v, want ErrFull", err)
	}
	out.Ack(Ack{1, 2}, now)
	for i := range 2 {
		if err := out.Add(bigMsg(fit+i, size), now); err != nil {
			t.Fatalf("after an acknowledgement of two, message %d: %v", i, err)
		}
	}
	if err := out.Add(bigMsg(fit+2, size), now); err != ErrFull {
		t.Fatalf("beyond the bound again: %v, want ErrFull", err)
	}
	// What ends something goes whatever the bounds.
	out.Push(bigMsg(-1, 10), now)
	if out.Pending() != fit+1 {
		t.Fatalf("%d pending, want %d", out.Pending(), fit+1)
	}
	// An empty link takes one message of any size, and then no other.
	empty := NewSender("src", 1)
	huge := nats.NewMsg("x")
	huge.Data = make([]byte, MaxPendingBytes+1)
	if err := empty.Add(huge, now); err != nil {
		t.Fatalf("one huge message on an empty link: %v", err)
	}
	if err := empty.Add(linkMsg(0), now); err != ErrFull {
		t.Fatalf("after a huge message: %v, want ErrFull", err)
	}
}

// A receiver holds early messages within maxHeldBytes too; those beyond
// are dropped and handled when the sender publishes them again.
func TestLinkHoldsEarlyMessagesWithinBytes(t *testing.T) {
	now := time.Now()
	const size = 64 << 10
	fit := maxHeldBytes / size
	out, in := NewSender("src", 1), &inLink{}
	out.Limit(MaxPending, 2*maxHeldBytes) // a sender's bound is not the case here
	for i := range fit + 9 {
		if err := out.Add(bigMsg(i, size), now); err != nil {
			t.Fatal(err)
		}
	}
	sent := slices.Clone(out.Unsent())
	handle := func(ms ...*nats.Msg) []string {
		var got []*nats.Msg
		for _, m := range ms {
			s, _ := Parse(m)
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

// A Receiver keeps one link per source node: each is acknowledged on the
// tick with its own link number, in a header the sender reads back with
// Parse; a forgotten source's link starts over.
func TestReceiverAcknowledgesEachSourceAndForgets(t *testing.T) {
	now := time.Now()
	var r Receiver
	a, b := NewSender("a", 3), NewSender("b", 1)
	for i := range 2 {
		_ = a.Add(linkMsg(i), now)
		_ = b.Add(linkMsg(i), now)
	}
	for _, m := range append(slices.Clone(a.Unsent()), b.Unsent()...) {
		s, _ := Parse(m)
		if out, _, ack := r.Receive(s, m); len(out) != 1 || ack {
			t.Fatalf("%d handled, ack at once %v; want 1, false", len(out), ack)
		}
	}
	acks := r.Acks()
	if fmt.Sprint(acks) != fmt.Sprint(map[string]Ack{"a": {3, 2}, "b": {1, 2}}) {
		t.Fatalf("acks %v", acks)
	}
	if again := r.Acks(); again != nil {
		t.Fatalf("acks again %v, with nothing new", again)
	}
	m := nats.NewMsg("x")
	SetAck(m, "dst", acks["a"])
	if s, ok := Parse(m); !ok || s != (Seq{Node: "dst", Link: 3, Seq: 2}) {
		t.Fatalf("acknowledgement read as %+v %v", s, ok)
	}
	r.Forget([]string{"b"})
	b.Rewind() // b never had the acknowledgement
	handled := 0
	for _, m := range b.Unsent() {
		s, _ := Parse(m)
		out, _, _ := r.Receive(s, m)
		handled += len(out)
	}
	if handled != 2 {
		t.Fatalf("%d of b's messages handled after Forget, want 2", handled)
	}
}
