package sse

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/tunnel"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// The fallback transport, for networks that break WebSockets: the
// session's frames go to the peer as the events of a text/event-stream
// response to GET <route>/events (same query as the WebSocket), and the
// peer's frames come as POSTs to <route>/send?session=<resume token>, one
// frame each. A stream is admitted, resumed and joined like a WebSocket
// (the Caddy face, package signaling); POSTs go to the session directly, outside any
// transport. A stream that ends without the session ending is a lost
// connection: the session goes away for the resume window.

// Suffixes of the SSE endpoints' paths, under the WebSocket's path.
const (
	eventsSuffix = "/events"
	sendSuffix   = "/send"
)

// pingComment is the comment line that keeps an idle stream (and the proxies
// on its way) alive.
var pingComment = []byte(": ping\n\n")

// Stream is the SSE transport of a session: one event stream, written by
// its request's goroutine only, which pulls frames from the session the
// way the WebSocket writer does (lock order session, then transport).
type Stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	role    role // what its frames and its end mean
	metrics session.Metrics
	wakeup  chan struct{} // holds a token when frames may be waiting
	// done closes when the stream starts closing, for the stream's
	// select; WriterCore's Closing says the same to everyone else.
	done chan struct{}

	// The preface, the locks' order, the batch step and the close state;
	// finished is guarded by its mu too.
	session.WriterCore
	finished bool // the request is over: its writer is not ours to touch
}

var (
	_ session.Transport = (*Stream)(nil)
	_ tunnel.Front      = (*Stream)(nil)
)

// NewStream makes the stream that w writes, refused until Attach or
// Forward gives it a role.
func NewStream(w http.ResponseWriter, metrics session.Metrics) *Stream {
	return &Stream{
		role:    refused{},
		w:       w,
		rc:      http.NewResponseController(w),
		metrics: metrics,
		wakeup:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
}

// Attach makes s the session the stream carries; nil detaches it. It is
// called before Run.
func (c *Stream) Attach(s *session.Session) {
	if s == nil {
		c.role = refused{}
		return
	}
	c.role = carrier{s}
}

// Say queues an unsequenced frame of the stream's own (an error, a
// resume's welcome), to go out before the session's frames.
func (c *Stream) Say(frame []byte) {
	c.Queue(frame)
	c.Wake()
}

// Relay implements tunnel.Front. A client that does not read the home's frames
// is cut off; it resumes.
func (c *Stream) Relay(frame []byte) {
	c.Mu.Lock()
	queued := c.RelayLocked(frame)
	c.Mu.Unlock()
	if !queued {
		c.end(false)
		return
	}
	c.Wake()
}

// EndFront implements tunnel.Front.
func (c *Stream) EndFront(int, string) { c.end(true) }

// Forward implements tunnel.Front: the peer's frames come as POSTs, which find
// the session's home by themselves; only the stream's end goes through tun.
func (c *Stream) Forward(link *tunnel.Link) { c.role = front{link} }

// Wake implements transport. It takes no lock: its caller holds the
// session's.
func (c *Stream) Wake() {
	select {
	case c.wakeup <- struct{}{}:
	default:
	}
}

// Send implements transport.
func (c *Stream) Send() { c.Wake() }

// Close implements transport.
func (c *Stream) Close(_ int, _ string, flush bool) { c.end(flush) }

// Displace implements transport.
func (c *Stream) Displace() { c.DisplaceBy(c) }

// Refuse ends a stream that may not join with frame, its only event.
func (c *Stream) Refuse(frame []byte) {
	c.Say(frame)
	c.end(true)
}

// end makes the stream end, after the frames waiting when flush is set.
// Without flush a write stuck on a peer that is not reading is cut short,
// so that the session's end is not held up by it.
func (c *Stream) end(flush bool) {
	c.CloseOnce(0, "", flush, func() {
		close(c.done)
		if flush {
			return
		}
		c.Mu.Lock()
		defer c.Mu.Unlock()
		if !c.finished {
			_ = c.rc.SetWriteDeadline(time.Now())
		}
	})
}

// Run writes the Run until it ends: the session's frames as they
// come, a ping comment when idle for pingInterval. The client going away,
// a failed write or the server shutting down (stop) is a lost connection;
// a session that ended or moved to another transport ends the Run
// after its last frames.
func (c *Stream) Run(ctx context.Context, stop <-chan struct{}, pingInterval time.Duration) {
	ticker := time.NewTicker(pingInterval)
	defer ticker.Stop()
	lost := false
	for !lost && !c.Closing() {
		if err := c.writeWaiting(); err != nil {
			lost = true
			break
		}
		select {
		case <-c.wakeup:
		case <-c.done:
		case <-ticker.C:
			lost = c.write(pingComment, time.Now().Add(session.WriteWait)) != nil
		case <-ctx.Done():
			lost = true
		case <-stop:
			lost = true
		}
	}
	c.finish(lost)
}

// writeWaiting writes what waits until nothing does or the stream closes.
func (c *Stream) writeWaiting() error {
	var stack [64]session.Frame
	for {
		frames := c.next(stack[:0], false)
		if len(frames) == 0 {
			return nil
		}
		if err := c.writeEvents(frames, time.Now().Add(session.WriteWait)); err != nil {
			return err
		}
	}
}

// next takes the frames to write next: the stream's own, then the
// session's. Unless flushing, a closing stream gets nothing more, so that
// nothing more is written to a peer that reads nothing.
func (c *Stream) next(batch []session.Frame, flushing bool) []session.Frame {
	s := c.role.sess()
	c.LockWith(s)
	defer c.UnlockWith(s)
	if c.Closing() && !flushing {
		return batch
	}
	frames, _ := c.TakeLocked(s, c, batch, false)
	return frames
}

// finish sees the stream out. A lost stream leaves its session away (or
// gone, when resume is off); a session that ended leaves its room now,
// before its last frames are flushed, so that a peer that reads nothing is
// gone for the others at once.
func (c *Stream) finish(lost bool) {
	if lost {
		c.role.lost(c)
		// Closing, but with no deadline to cut a write short: there is
		// none, and a stream the server ends (stop) ends cleanly.
		c.CloseOnce(0, "", false, func() { close(c.done) })
	}
	if s := c.role.sess(); s != nil && s.IsEnded() {
		s.Leave()
	}
	if c.FlushOnClose {
		deadline := time.Now().Add(session.CloseGrace)
		var stack [64]session.Frame
		for {
			frames := c.next(stack[:0], true)
			if len(frames) == 0 || c.writeEvents(frames, deadline) != nil {
				break
			}
		}
	}
	c.Mu.Lock()
	c.finished = true
	c.Mu.Unlock()
}

// writeEvents writes frames as events, one write and one flush for all.
// Unless the stream is being flushed on purpose, a stream that started
// closing gets nothing more: checked after the deadline is set, so that
// the immediate deadline end sets to interrupt a stuck write cannot be
// overwritten by this one.
func (c *Stream) writeEvents(frames []session.Frame, deadline time.Time) error {
	return session.WriteFrames(frames, c.metrics, appendEvents,
		func(b []byte) error { return c.write(b, deadline) })
}

// appendEvents appends frames as events.
func appendEvents(b []byte, frames []session.Frame) []byte {
	for _, f := range frames {
		b = appendEvent(b, f)
	}
	return b
}

// write writes b and flushes it through Caddy's writer wrappers (the
// ResponseController follows Unwrap), within deadline.
func (c *Stream) write(b []byte, deadline time.Time) error {
	// Not every writer supports deadlines (ErrNotSupported): then the
	// write is bounded by the connection failing.
	_ = c.rc.SetWriteDeadline(deadline)
	if c.Cut() {
		return session.ErrClosing
	}
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	if err := c.rc.Flush(); err != nil {
		return err
	}
	// An idle stream must not run into the deadline: HTTP/2 resets a
	// stream whose deadline passes, write or not.
	_ = c.rc.SetWriteDeadline(time.Time{})
	return nil
}

// appendEvent appends f as one event: "id: <seq>" unless f is unsequenced,
// and the frame in "data:" lines. Relayed data may hold line breaks
// between JSON tokens; each starts a new data line, and the client joins
// them with "\n", which leaves the JSON as it was.
func appendEvent(b []byte, f session.Frame) []byte {
	seq := f.Seq
	if seq == 0 {
		seq = leadingSeq(f.B) // a frame relayed from the session's home
	}
	if seq != 0 {
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, seq, 10)
		b = append(b, '\n')
	}
	if !bytes.ContainsAny(f.B, "\r\n") {
		b = append(b, "data: "...)
		return append(f.Sequenced(b), "\n\n"...)
	}
	rest := f.Sequenced(nil)
	for {
		b = append(b, "data: "...)
		i := bytes.IndexAny(rest, "\r\n")
		if i < 0 {
			b = append(b, rest...)
			return append(b, "\n\n"...)
		}
		b = append(b, rest[:i]...)
		b = append(b, '\n')
		if rest[i] == '\r' && i+1 < len(rest) && rest[i+1] == '\n' {
			i++
		}
		rest = rest[i+1:]
	}
}

// leadingSeq is the seq a sequenced frame starts with, or 0.
func leadingSeq(frame []byte) uint64 {
	rest, ok := bytes.CutPrefix(frame, []byte(`{"seq":`))
	if !ok {
		return 0
	}
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0
	}
	n, _ := strconv.ParseUint(string(rest[:end]), 10, 64)
	return n
}

// role is what a stream's frames and its end mean, as a WebSocket's role
// is: a stream plays one at a time, set before it runs (Attach, Forward).
type role interface {
	// sess is the session whose outbox the stream takes from once its own
	// frames are out, and whose lock it takes first; nil for none.
	sess() *session.Session
	// lost tells whoever must know that the stream was lost.
	lost(c *Stream)
}

// carrier is a stream carrying its session, which a lost stream leaves
// away for the resume window.
type carrier struct{ s *session.Session }

func (r carrier) sess() *session.Session { return r.s }
func (r carrier) lost(c *Stream)         { r.s.Lost(c, false) }

// refused is a stream without a session: only its own frames go out.
type refused struct{}

func (refused) sess() *session.Session { return nil }
func (refused) lost(*Stream)           {}

// front is a tunnel's front: its own frames are the home's, relayed, and
// its peer's frames come as POSTs that find the home by themselves; a
// lost stream tells the home, whose session then goes away.
type front struct{ link *tunnel.Link }

func (front) sess() *session.Session { return nil }
func (r front) lost(*Stream)         { r.link.Close(wire.CloseAbnormal, "") }

// Kind implements session.Kinder.
func (*Stream) Kind() string { return "sse" }
