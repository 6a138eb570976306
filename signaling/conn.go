package signaling

import (
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// sendQueueSize bounds the frames waiting for one peer; a peer that lets
	// it fill up is disconnected rather than stalling its room.
	sendQueueSize = 256
	// stallTimeout is how long a sender waits for room in a full queue
	// before the reader counts as not reading.
	stallTimeout = 5 * time.Second
	// writeWait bounds one frame write to a peer.
	writeWait = 10 * time.Second
	// closeGrace is how long the server waits for the peer's close frame
	// after sending its own, so the peer gets to read what came before it.
	closeGrace = 2 * time.Second
)

// wsPeer is a Peer on a WebSocket connection. At most one goroutine (the
// writer) writes at a time; the session's goroutine does all reads. The
// writer runs only while there is something to write: an idle peer has no
// writer goroutine and no queue, which is most of what an idle peer would
// otherwise cost.
type wsPeer struct {
	id      string
	ws      *websocket.Conn
	metrics *hubMetrics

	mu      sync.Mutex
	queue   [][]byte // frames waiting, from head on; at most sendQueueSize
	head    int
	writing bool          // a writer goroutine is running
	pingDue bool          // the writer is to send a ping
	space   chan struct{} // made when a sender first waits on a full queue
	// Set by start; until then frames are only queued.
	onClose      func()
	finished     chan struct{} // closed when the last writer is done
	pingInterval time.Duration
	pinger       *time.Timer

	closeOnce   sync.Once
	done        chan struct{} // closed when the peer starts disconnecting
	closeCode   int
	closeReason string
	flush       bool // whether queued frames go out before the close frame
}

var _ Peer = (*wsPeer)(nil)

func newWSPeer(id string, ws *websocket.Conn, metrics *hubMetrics) *wsPeer {
	return &wsPeer{
		id:      id,
		ws:      ws,
		metrics: metrics,
		done:    make(chan struct{}),
	}
}

// ID implements Peer.
func (p *wsPeer) ID() string { return p.id }

// start lets writers run and pings the peer every pingInterval. onClose
// runs on the writer as soon as the peer starts closing; the returned
// channel closes once the close frame is out.
func (p *wsPeer) start(pingInterval time.Duration, onClose func()) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onClose, p.pingInterval = onClose, pingInterval
	p.finished = make(chan struct{})
	p.pinger = time.AfterFunc(pingInterval, p.pingTick)
	if p.pending() > 0 || p.closing() {
		p.wakeWriter()
	}
	return p.finished
}

// pingTick asks the writer for a keep-alive ping and re-arms itself.
func (p *wsPeer) pingTick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing() {
		return
	}
	p.pingDue = true
	p.wakeWriter()
	p.pinger.Reset(p.pingInterval)
}

// Send implements Peer.
func (p *wsPeer) Send(frame []byte) bool {
	p.mu.Lock()
	if p.closing() {
		p.mu.Unlock()
		return false
	}
	if p.pending() < sendQueueSize {
		p.push(frame)
		p.mu.Unlock()
		return true
	}
	p.mu.Unlock()
	return p.waitForRoom(frame)
}

// waitForRoom queues a frame to a full queue once the writer makes room,
// which holds back only the sending peer. A reader that makes no room in
// time is not reading.
func (p *wsPeer) waitForRoom(frame []byte) bool {
	t := time.NewTimer(stallTimeout)
	defer t.Stop()
	for {
		p.mu.Lock()
		if p.closing() {
			p.mu.Unlock()
			return false
		}
		if p.pending() < sendQueueSize {
			p.push(frame)
			p.signalSpace() // room may be left for another waiting sender
			p.mu.Unlock()
			return true
		}
		if p.space == nil {
			p.space = make(chan struct{}, 1)
		}
		space := p.space
		p.mu.Unlock()
		select {
		case <-space:
		case <-p.done:
			return false
		case <-t.C:
			if !p.closing() {
				p.metrics.slow.Inc()
			}
			p.Close(CloseTooSlow, "outbound queue full: peer is not reading")
			return false
		}
	}
}

// pending is the number of queued frames; the caller holds p.mu.
func (p *wsPeer) pending() int { return len(p.queue) - p.head }

// push queues a frame and makes sure a writer will send it; the caller
// holds p.mu and has checked there is room.
func (p *wsPeer) push(frame []byte) {
	if len(p.queue) == cap(p.queue) && p.head > 0 {
		// Reuse the slots already sent rather than grow the slice.
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue, p.head = p.queue[:n], 0
	}
	p.queue = append(p.queue, frame)
	p.wakeWriter()
}

// pop takes the oldest frame; the caller holds p.mu and has checked there
// is one.
func (p *wsPeer) pop() []byte {
	frame := p.queue[p.head]
	p.queue[p.head] = nil
	p.head++
	if p.head == len(p.queue) {
		// Drained. A queue grown by a burst is dropped so an idle peer
		// holds none; a small one is kept to spare a trickle allocations.
		p.queue, p.head = p.queue[:0], 0
		if cap(p.queue) > 4 {
			p.queue = nil
		}
	}
	p.signalSpace()
	return frame
}

// signalSpace wakes a sender waiting for room, if any; the caller holds p.mu.
func (p *wsPeer) signalSpace() {
	if p.space == nil || p.pending() >= sendQueueSize {
		return
	}
	select {
	case p.space <- struct{}{}:
	default:
	}
}

// wakeWriter starts the writer unless one is running or the peer has not
// started; the caller holds p.mu.
func (p *wsPeer) wakeWriter() {
	if p.writing || p.finished == nil {
		return
	}
	p.writing = true
	go p.writeLoop()
}

// Close implements Peer.
func (p *wsPeer) Close(code int, reason string) { p.disconnect(code, reason, false) }

// fail tells the peer why it is being disconnected and closes. It does not
// wait for room in the queue: a peer being evicted may not be reading.
func (p *wsPeer) fail(code, msg string, closeCode int) {
	p.mu.Lock()
	if p.pending() < sendQueueSize {
		p.push(errorFrame(code, msg))
	}
	p.mu.Unlock()
	p.closeAfterQueued(closeCode, code)
}

// evict disconnects a peer the hub handed back, with an error frame where
// the peer can carry one.
func evict(p Peer, code, msg string, closeCode int) {
	if wp, ok := p.(*wsPeer); ok {
		wp.fail(code, msg, closeCode)
		return
	}
	p.Close(closeCode, code)
}

// closeAfterQueued sends what is queued (such as an error frame) and then
// the close frame.
func (p *wsPeer) closeAfterQueued(code int, reason string) { p.disconnect(code, reason, true) }

func (p *wsPeer) disconnect(code int, reason string, flush bool) {
	p.closeOnce.Do(func() {
		p.closeCode, p.closeReason, p.flush = code, reason, flush
		close(p.done)
		if !flush {
			// Unblock a write stuck on a peer that is not reading, so the
			// writer sees done and the peer leaves its room now.
			_ = p.ws.UnderlyingConn().SetWriteDeadline(time.Now())
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.pinger != nil {
			p.pinger.Stop()
		}
		// An idle peer has no writer to notice: start one to say goodbye.
		p.wakeWriter()
	})
}

// writeLoop sends queued frames and pings until there is nothing left to
// write, or, once the peer is disconnecting, runs onClose and sends the
// close frame.
func (p *wsPeer) writeLoop() {
	for {
		frame, ping, closing := p.next()
		switch {
		case closing:
			p.onClose()
			p.finish()
			close(p.finished)
			return
		case ping:
			if err := p.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				p.Close(websocket.CloseAbnormalClosure, "ping failed")
			}
		case frame != nil:
			if err := p.writeBatch(frame, time.Now().Add(writeWait)); err != nil {
				p.Close(websocket.CloseAbnormalClosure, "write failed")
			}
		default:
			return // idle: the next Send starts a new writer
		}
	}
}

// next is the writer's next job. A closing peer wins over a full queue, so
// the writer does not go on writing to a peer that reads nothing. When
// there is nothing to do the writer stops being the writer.
func (p *wsPeer) next() (frame []byte, ping, closing bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closing():
		return nil, false, true
	case p.pingDue:
		p.pingDue = false
		return nil, true, false
	case p.pending() > 0:
		return p.pop(), false, false
	}
	p.writing = false
	return nil, false, false
}

// errClosing stops a write to a peer that started disconnecting.
var errClosing = errors.New("peer is disconnecting")

// write sends one frame by the deadline. Unless the queue is being flushed
// on purpose, a peer that started disconnecting gets nothing more: checked
// after the deadline is set, so that the immediate deadline Close sets to
// interrupt a stuck write cannot be overwritten by a later one.
func (p *wsPeer) write(frame []byte, deadline time.Time) error {
	if err := p.ws.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if p.closing() && !p.flush {
		return errClosing
	}
	if err := p.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		return err
	}
	p.metrics.frameOut(frame)
	return nil
}

// maxBatch bounds the bytes one writeBatch sends in one write.
const maxBatch = 16 << 10

// batchBuffers hold encoded batches between writes.
var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, maxBatch+maxFrameHeader); return &b }}

// writeBatch sends first and the frames queued behind it, up to maxBatch
// bytes, in one write to the connection instead of one per frame: under
// load most of a relay's cost is system calls. The frames are encoded here
// (unmasked text frames need only a header), which is safe because this
// goroutine is the connection's only writer, gorilla's writes included.
func (p *wsPeer) writeBatch(first []byte, deadline time.Time) error {
	var stack [64][]byte // the batch, without allocating
	frames := p.takeBatch(append(stack[:0], first))
	buf := batchBuffers.Get().(*[]byte)
	defer batchBuffers.Put(buf)
	b := (*buf)[:0]
	for _, f := range frames {
		b = appendTextFrame(b, f)
	}
	*buf = b
	conn := p.ws.UnderlyingConn()
	if err := conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	// Checked after the deadline is set, as in write.
	if p.closing() && !p.flush {
		return errClosing
	}
	if _, err := conn.Write(b); err != nil {
		return err
	}
	for _, f := range frames {
		p.metrics.frameOut(f)
	}
	return nil
}

// takeBatch appends the frames queued behind frames[0] that fit in a batch.
func (p *wsPeer) takeBatch(frames [][]byte) [][]byte {
	size := len(frames[0])
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(frames) < cap(frames) && p.pending() > 0 && !p.closing() {
		next := p.queue[p.head]
		if size+len(next) > maxBatch {
			break
		}
		size += len(next)
		frames = append(frames, p.pop())
	}
	return frames
}

// maxFrameHeader is the longest header of a server's WebSocket frame.
const maxFrameHeader = 10

// appendTextFrame appends frame as one unmasked, final text frame (RFC 6455
// 5.2), as a server sends it.
func appendTextFrame(b, frame []byte) []byte {
	const finText = 0x80 | websocket.TextMessage
	switch n := len(frame); {
	case n < 126:
		b = append(b, finText, byte(n))
	case n <= 0xffff:
		b = append(b, finText, 126, byte(n>>8), byte(n))
	default:
		b = append(b, finText, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, frame...)
}

func (p *wsPeer) closing() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// finish flushes if asked, sends the close frame and gives the peer
// closeGrace to answer it; the reader then fails and the connection closes.
// All of it is bounded by closeGrace, also for a peer that reads nothing.
func (p *wsPeer) finish() {
	deadline := time.Now().Add(closeGrace)
	if p.flush {
	drain:
		for {
			frame := p.popQueued()
			if frame == nil || p.write(frame, deadline) != nil {
				break drain
			}
		}
	}
	if p.closeCode != websocket.CloseAbnormalClosure {
		msg := websocket.FormatCloseMessage(p.closeCode, p.closeReason)
		_ = p.ws.WriteControl(websocket.CloseMessage, msg, deadline)
	}
	_ = p.ws.SetReadDeadline(deadline)
}

// popQueued takes the oldest queued frame, or nil.
func (p *wsPeer) popQueued() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending() == 0 {
		return nil
	}
	return p.pop()
}

// drainReads discards incoming frames until the connection fails, which
// happens at the latest closeGrace after the close frame went out.
func (p *wsPeer) drainReads() {
	for {
		if _, _, err := p.ws.NextReader(); err != nil {
			return
		}
	}
}
