package session

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// coreTransport is a transport that is nothing but the writer core, so
// that the core is tested without any writer around it.
type coreTransport struct {
	WriterCore
	closes []string // each close asked for: code, reason, flush
	ran    int      // how often closeOnce ran its then
}

func (c *coreTransport) Wake()     {}
func (c *coreTransport) Send()     {}
func (c *coreTransport) Displace() { c.DisplaceBy(c) }
func (c *coreTransport) Close(code int, reason string, flush bool) {
	c.closes = append(c.closes, fmt.Sprint(code, " ", reason, " ", flush))
	c.CloseOnce(code, reason, flush, func() { c.ran++ })
}

// take is one batch, taken as a writer takes it: both locks held.
func (c *coreTransport) take(s *Session, batch []Frame, all bool) ([]Frame, bool) {
	c.LockWith(s)
	defer c.UnlockWith(s)
	return c.TakeLocked(s, c, batch, all)
}

// coreSession is a session carried by t with n frames in its outbox.
func coreSession(t Transport, n int) *Session {
	s := &Session{tr: t}
	for i := range n {
		s.out.push([]byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	return s
}

// coreFrames renders a batch: an own frame as it is, a session's by seq.
func coreFrames(frames []Frame) string {
	var b bytes.Buffer
	for _, f := range frames {
		if f.Seq != 0 {
			fmt.Fprintf(&b, "#%d ", f.Seq)
		} else {
			fmt.Fprintf(&b, "%s ", f.B)
		}
	}
	return b.String()
}

func TestWriterCoreOwnFramesGoBeforeTheOutbox(t *testing.T) {
	c := &coreTransport{}
	s := coreSession(c, 2)
	c.Queue([]byte("a"))
	c.Queue([]byte("b"))
	got, fromOutbox := c.take(s, make([]Frame, 0, 8), false)
	if coreFrames(got) != "a b " || fromOutbox {
		t.Fatalf("first batch %q (from the outbox: %v), want the own frames alone", coreFrames(got), fromOutbox)
	}
	got, fromOutbox = c.take(s, make([]Frame, 0, 8), false)
	if coreFrames(got) != "#1 #2 " || !fromOutbox {
		t.Fatalf("second batch %q (from the outbox: %v), want the session's", coreFrames(got), fromOutbox)
	}
	if got, _ = c.take(s, make([]Frame, 0, 8), false); len(got) != 0 {
		t.Fatalf("third batch %q, want nothing", coreFrames(got))
	}
	if c.preface != nil && len(c.preface) != 0 {
		t.Fatalf("own frames left: %q", c.preface)
	}
}

func TestWriterCoreBatchHoldsWhatFitsUnlessAll(t *testing.T) {
	c := &coreTransport{}
	s := coreSession(c, 1)
	for _, f := range []string{"a", "b", "c"} {
		c.Queue([]byte(f))
	}
	held := c.preface // the array the frames taken leave
	if got, _ := c.take(s, make([]Frame, 0, 2), false); coreFrames(got) != "a b " {
		t.Fatalf("bounded batch %q, want a b", coreFrames(got))
	}
	if held[0] != nil || held[1] != nil {
		t.Fatal("frames taken are still held by the queue's array")
	}
	if got, _ := c.take(s, make([]Frame, 0, 2), false); coreFrames(got) != "c " {
		t.Fatalf("next bounded batch %q, want c alone, before the outbox", coreFrames(got))
	}
	for _, f := range []string{"d", "e", "f"} {
		c.Queue([]byte(f))
	}
	if got, _ := c.take(s, make([]Frame, 0, 2), true); coreFrames(got) != "d e f " || c.preface != nil {
		t.Fatalf("flush batch %q, left %q; want all own frames", coreFrames(got), c.preface)
	}
	if got, _ := c.take(s, make([]Frame, 0, 2), true); coreFrames(got) != "#1 " {
		t.Fatalf("after the own frames %q, want the outbox", coreFrames(got))
	}
}

func TestWriterCoreTakesNothingForAnotherTransport(t *testing.T) {
	c := &coreTransport{}
	s := coreSession(&coreTransport{}, 2) // carried by a newer transport
	if got, _ := c.take(s, make([]Frame, 0, 8), false); len(got) != 0 {
		t.Fatalf("a displaced transport took %q", coreFrames(got))
	}
	if got, fromOutbox := c.take(nil, make([]Frame, 0, 8), false); len(got) != 0 || fromOutbox {
		t.Fatalf("without a session: %q, %v", coreFrames(got), fromOutbox)
	}
	if s.out.pending() != 2 {
		t.Fatalf("the session's frames went: %d pending", s.out.pending())
	}
}

func TestWriterCoreRelayIsBounded(t *testing.T) {
	c := &coreTransport{}
	c.Mu.Lock()
	defer c.Mu.Unlock()
	for i := range SendQueueSize {
		if !c.RelayLocked([]byte{byte(i)}) {
			t.Fatalf("frame %d refused below the bound", i)
		}
	}
	if c.RelayLocked([]byte("over")) {
		t.Fatal("frame over the bound queued")
	}
	if len(c.preface) != SendQueueSize || c.preface[SendQueueSize-1][0] != byte(SendQueueSize-1) {
		t.Fatalf("%d frames queued, want %d in order", len(c.preface), SendQueueSize)
	}
	c.preface = c.preface[1:] // the writer took one: room again
	if !c.RelayLocked([]byte("next")) {
		t.Fatal("frame refused with room")
	}
}

func TestWriterCoreClosesOnce(t *testing.T) {
	for _, flush := range []bool{true, false} {
		c := &coreTransport{}
		if c.Closing() {
			t.Fatal("closing before any close")
		}
		c.Close(4000, "first", flush)
		c.Close(4001, "second", !flush)
		if !c.Closing() || c.ran != 1 {
			t.Fatalf("flush %v: closing %v, then ran %d times", flush, c.Closing(), c.ran)
		}
		if c.CloseCode != 4000 || c.CloseReason != "first" || c.FlushOnClose != flush {
			t.Fatalf("flush %v: kept %d %q flush %v, want the first close's", flush, c.CloseCode, c.CloseReason, c.FlushOnClose)
		}
	}
}

func TestWriterCoreDisplaceSaysReplacedThenFlushes(t *testing.T) {
	c := &coreTransport{}
	s := coreSession(&coreTransport{}, 1) // the session moved on
	c.Queue([]byte("welcome"))
	c.Displace()
	if len(c.closes) != 1 || c.closes[0] != fmt.Sprint(wire.CloseReplaced, " ", wire.CodeReplaced, " true") {
		t.Fatalf("closes %q, want one flushing close with %d %s", c.closes, wire.CloseReplaced, wire.CodeReplaced)
	}
	got, _ := c.take(s, nil, true)
	if coreFrames(got) != "welcome "+string(wire.Replaced())+" " {
		t.Fatalf("flushed %q, want the own frames with replaced last", coreFrames(got))
	}
}
