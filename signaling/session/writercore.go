package session

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// WriterCore is what the session transports (ws.Conn, sse.Stream,
// the tunnel's home end) share about writing to their peer, so that each says
// only how it writes: its own unsequenced frames that go out before the
// session's (a refusal, a resume's welcome, a front's relayed frames),
// the step that takes the next batch under the session's lock, and how
// the transport ends. How a writer runs, wakes and writes stays with the
// transport: a WebSocket's writer may run on a sender's goroutine, an SSE
// stream's is its request's, a tunnel's sends over the hub.
type WriterCore struct {
	// Mu guards the transport; the session's lock, when both are held,
	// is taken first (see lockWith). Transports keep their own writer
	// state under it too.
	Mu      sync.Mutex
	preface [][]byte // unsequenced frames that go out first

	endOnce      sync.Once
	closed       atomic.Bool // the transport started closing
	CloseCode    int
	CloseReason  string
	FlushOnClose bool // whether waiting frames go out before the end
}

// Queue adds an unsequenced frame of the transport's own; waking the
// writer is the caller's, since each transport wakes its own way.
func (w *WriterCore) Queue(frame []byte) {
	w.Mu.Lock()
	w.preface = append(w.preface, frame)
	w.Mu.Unlock()
}

// QueueLocked is Queue from a caller that holds the transport's lock.
func (w *WriterCore) QueueLocked(frame []byte) { w.preface = append(w.preface, frame) }

// RelayLocked queues a frame a front received from the session's home,
// unless sendQueueSize of them wait already: then the client is not
// reading, and the caller cuts it off (it resumes). The caller holds w.mu.
func (w *WriterCore) RelayLocked(frame []byte) bool {
	if len(w.preface) >= SendQueueSize {
		return false
	}
	w.preface = append(w.preface, frame)
	return true
}

// LockWith takes the session's lock, if there is a session, then the
// transport's: the order every writer takes them in, since the session
// calls into its transport (wake) holding its own.
func (w *WriterCore) LockWith(s *Session) {
	if s != nil {
		s.mu.Lock()
	}
	w.Mu.Lock()
}

// UnlockWith undoes lockWith.
func (w *WriterCore) UnlockWith(s *Session) {
	w.Mu.Unlock()
	if s != nil {
		s.mu.Unlock()
	}
}

// TakeLocked appends the next batch for transport t of session s (nil
// for a connection refused before joining, or a front) to batch: the
// transport's own frames while there are any, so that a refusal or a
// resume's welcome precedes the frames replayed after it, else what the
// session's outbox hands t. The own frames fill batch up to its capacity,
// or all go with all (a flush, which has no stack to fit). fromOutbox
// says the frames are the session's, which a WebSocket's ack ping
// follows. The caller holds both locks (lockWith).
func (w *WriterCore) TakeLocked(s *Session, t Transport, batch []Frame, all bool) (frames []Frame, fromOutbox bool) {
	if len(w.preface) > 0 {
		return w.drainPreface(batch, all), false
	}
	if s == nil {
		return batch, false
	}
	return s.take(t, batch), true
}

// drainPreface moves own frames into batch, up to its capacity unless all;
// the slots moved are cleared so that the frames are not kept alive.
func (w *WriterCore) drainPreface(batch []Frame, all bool) []Frame {
	n := len(w.preface)
	if !all {
		n = min(n, cap(batch)-len(batch))
	}
	for i, f := range w.preface[:n] {
		batch = append(batch, Frame{B: f})
		w.preface[i] = nil
	}
	if all {
		w.preface = nil
	} else {
		w.preface = w.preface[n:]
	}
	return batch
}

// CloseOnce records how the transport ends, the first time it is asked
// to, and then runs then (the transport's own steps: cutting a stuck
// write short, waking its writer) inside the same once, so that a second
// caller returns only after the first one's steps are done. closing is
// true from here on, after code, reason and flush are set: a writer that
// sees closing reads them safely.
func (w *WriterCore) CloseOnce(code int, reason string, flush bool, then func()) {
	w.endOnce.Do(func() {
		w.CloseCode, w.CloseReason, w.FlushOnClose = code, reason, flush
		w.closed.Store(true)
		then()
	})
}

// Cut reports whether nothing more may be written: the transport is
// closing without a flush. A writer checks it after setting its write
// deadline, so that the immediate deadline a close without flush sets, to
// interrupt a stuck write, cannot be overwritten by a later write's.
func (w *WriterCore) Cut() bool { return w.closed.Load() && !w.FlushOnClose }

// Closing reports whether the transport started closing.
func (w *WriterCore) Closing() bool { return w.closed.Load() }

// DisplaceBy ends transport t, whose session a resume moved to another
// transport: the peer is told `replaced`, flushed ahead of the close so
// that it knows not to reconnect, and the session goes on.
func (w *WriterCore) DisplaceBy(t Transport) {
	w.Queue(wire.Replaced())
	t.Close(wire.CloseReplaced, wire.CodeReplaced, true)
}

// What every transport's writer is bound by.
const (
	// CloseGrace is how long a transport that closes waits for the peer
	// to take what came before the end: a WebSocket's close frame
	// answered, a stream's last frames flushed.
	CloseGrace = 2 * time.Second
)

// WriteWait bounds one write to a peer; a variable for tests.
var WriteWait = 10 * time.Second

// ErrClosing stops a write to a peer that started disconnecting.
var ErrClosing = errors.New("peer is disconnecting")

// BatchBuffers hold encoded batches between writes: MaxBatch bytes of
// frames, and room for their framing (a WebSocket header, an event's
// "id:" and "data:" lines).
var BatchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, MaxBatch+batchSlack); return &b }}

// batchSlack is the room BatchBuffers leave beyond MaxBatch.
const batchSlack = 64

// WriteFrames is the batched write every transport's writer does: frames
// encoded by encode into a pooled buffer, the batch handed to write, and
// each frame counted out in m once written.
func WriteFrames(frames []Frame, m Metrics, encode func(b []byte, frames []Frame) []byte, write func(b []byte) error) error {
	buf := BatchBuffers.Get().(*[]byte)
	defer BatchBuffers.Put(buf)
	b := encode((*buf)[:0], frames)
	*buf = b
	if err := write(b); err != nil {
		return err
	}
	for _, f := range frames {
		m.FrameOut(f.B)
	}
	return nil
}
