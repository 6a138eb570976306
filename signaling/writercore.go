package signaling

import (
	"sync"
	"sync/atomic"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// writerCore is what the session transports (wsConn, sseConn,
// tunnelTransport) share about writing to their peer, so that each says
// only how it writes: its own unsequenced frames that go out before the
// session's (a refusal, a resume's welcome, a front's relayed frames),
// the step that takes the next batch under the session's lock, and how
// the transport ends. How a writer runs, wakes and writes stays with the
// transport: a WebSocket's writer may run on a sender's goroutine, an SSE
// stream's is its request's, a tunnel's sends over the hub.
type writerCore struct {
	// mu guards the transport; the session's lock, when both are held,
	// is taken first (see lockWith). Transports keep their own writer
	// state under it too.
	mu      sync.Mutex
	preface [][]byte // unsequenced frames that go out first

	endOnce     sync.Once
	closed      atomic.Bool // the transport started closing
	closeCode   int
	closeReason string
	flush       bool // whether waiting frames go out before the end
}

// queue adds an unsequenced frame of the transport's own; waking the
// writer is the caller's, since each transport wakes its own way.
func (w *writerCore) queue(frame []byte) {
	w.mu.Lock()
	w.preface = append(w.preface, frame)
	w.mu.Unlock()
}

// relayLocked queues a frame a front received from the session's home,
// unless sendQueueSize of them wait already: then the client is not
// reading, and the caller cuts it off (it resumes). The caller holds w.mu.
func (w *writerCore) relayLocked(frame []byte) bool {
	if len(w.preface) >= sendQueueSize {
		return false
	}
	w.preface = append(w.preface, frame)
	return true
}

// lockWith takes the session's lock, if there is a session, then the
// transport's: the order every writer takes them in, since the session
// calls into its transport (wake) holding its own.
func (w *writerCore) lockWith(s *session) {
	if s != nil {
		s.mu.Lock()
	}
	w.mu.Lock()
}

// unlockWith undoes lockWith.
func (w *writerCore) unlockWith(s *session) {
	w.mu.Unlock()
	if s != nil {
		s.mu.Unlock()
	}
}

// takeLocked appends the next batch for transport t of session s (nil
// for a connection refused before joining, or a front) to batch: the
// transport's own frames while there are any, so that a refusal or a
// resume's welcome precedes the frames replayed after it, else what the
// session's outbox hands t. The own frames fill batch up to its capacity,
// or all go with all (a flush, which has no stack to fit). fromOutbox
// says the frames are the session's, which a WebSocket's ack ping
// follows. The caller holds both locks (lockWith).
func (w *writerCore) takeLocked(s *session, t transport, batch []outFrame, all bool) (frames []outFrame, fromOutbox bool) {
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
func (w *writerCore) drainPreface(batch []outFrame, all bool) []outFrame {
	n := len(w.preface)
	if !all {
		n = min(n, cap(batch)-len(batch))
	}
	for i, f := range w.preface[:n] {
		batch = append(batch, outFrame{b: f})
		w.preface[i] = nil
	}
	if all {
		w.preface = nil
	} else {
		w.preface = w.preface[n:]
	}
	return batch
}

// closeOnce records how the transport ends, the first time it is asked
// to, and then runs then (the transport's own steps: cutting a stuck
// write short, waking its writer) inside the same once, so that a second
// caller returns only after the first one's steps are done. closing is
// true from here on, after code, reason and flush are set: a writer that
// sees closing reads them safely.
func (w *writerCore) closeOnce(code int, reason string, flush bool, then func()) {
	w.endOnce.Do(func() {
		w.closeCode, w.closeReason, w.flush = code, reason, flush
		w.closed.Store(true)
		then()
	})
}

// closing reports whether the transport started closing.
func (w *writerCore) closing() bool { return w.closed.Load() }

// displaceBy ends transport t, whose session a resume moved to another
// transport: the peer is told `replaced`, flushed ahead of the close so
// that it knows not to reconnect, and the session goes on.
func (w *writerCore) displaceBy(t transport) {
	w.queue(wire.Replaced())
	t.close(wire.CloseReplaced, wire.CodeReplaced, true)
}
