package signaling

import (
	"encoding/binary"
	"errors"
	"strconv"
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

// wsConn is the WebSocket transport of a session. At most one goroutine
// (the writer) writes at a time; the connection's own goroutine does all
// reads. The writer runs only while there is something to write: an idle
// peer has no writer goroutine, which is most of what an idle peer would
// otherwise cost. Frames come from the session's outbox, after the
// connection's own unsequenced frames (a refusal, a resume's welcome).
type wsConn struct {
	ws      *websocket.Conn
	s       *session // nil for a connection refused before joining, or a front
	fwd     Tunnel   // a front's tunnel to the session's home server
	maxSize int64    // of a frame read
	metrics *hubMetrics

	mu       sync.Mutex
	preface  [][]byte // unsequenced frames that go out first
	writing  bool     // a writer goroutine is running
	pingDue  bool     // the writer is to send a ping
	finished chan struct{}
	// Set by start; until then frames are only queued.
	pingInterval time.Duration
	pinger       *time.Timer
	pingAt       time.Time // when the pinger fires next

	closeOnce   sync.Once
	done        chan struct{} // closed when the connection starts closing
	closeCode   int
	closeReason string
	flush       bool // whether waiting frames go out before the close frame
}

var _ transport = (*wsConn)(nil)

func newWSConn(ws *websocket.Conn, metrics *hubMetrics) *wsConn {
	return &wsConn{ws: ws, metrics: metrics, done: make(chan struct{})}
}

// start lets writers run and pings the peer every pingInterval; the
// returned channel closes once the close frame is out.
func (c *wsConn) start(pingInterval time.Duration) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pingInterval = pingInterval
	c.finished = make(chan struct{})
	c.pinger = time.AfterFunc(pingInterval, c.pingTick)
	c.pingAt = time.Now().Add(pingInterval)
	c.wakeLocked()
	return c.finished
}

// pingTick asks the writer for a keep-alive ping and re-arms itself.
func (c *wsConn) pingTick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing() {
		return
	}
	c.pingDue = true
	c.wakeLocked()
	c.pinger.Reset(c.pingInterval)
	c.pingAt = time.Now().Add(c.pingInterval)
}

// ackDelay bounds how long frames kept for replay wait for the ping whose
// pong lets them go: the ping comes this soon after they were written
// (rather than up to a whole ping_interval later), so a peer holds a few
// seconds of its frames, and an idle one none once its pong is in.
const ackDelay = 3 * time.Second

// pingSoon brings the next ping forward to within ackDelay; the caller
// holds c.mu.
func (c *wsConn) pingSoon() {
	if c.pinger == nil || c.closing() {
		return
	}
	if at := time.Now().Add(ackDelay); c.pingAt.After(at) {
		c.pinger.Reset(ackDelay)
		c.pingAt = at
	}
}

// attach implements peerTransport; it is called before start.
func (c *wsConn) attach(s *session) { c.s = s }

// say queues an unsequenced frame of the connection's own.
func (c *wsConn) say(frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.preface = append(c.preface, frame)
	c.wakeLocked()
}

// relay queues a frame a front received from the session's home. A
// client that does not read them is cut off; it resumes.
func (c *wsConn) relay(frame []byte) {
	c.mu.Lock()
	full := len(c.preface) >= sendQueueSize
	if !full {
		c.preface = append(c.preface, frame)
		c.wakeLocked()
	}
	c.mu.Unlock()
	if full {
		c.disconnect(websocket.CloseAbnormalClosure, "outbound queue full", false)
	}
}

// endFront implements front.
func (c *wsConn) endFront(code int, reason string) { c.disconnect(code, reason, true) }

// forward implements front.
func (c *wsConn) forward(tun Tunnel) { c.fwd = tun }

// wake implements transport.
func (c *wsConn) wake() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wakeLocked()
}

// wakeLocked starts the writer unless one is running or the connection
// has not started; the caller holds c.mu.
func (c *wsConn) wakeLocked() {
	if c.writing || c.finished == nil {
		return
	}
	c.writing = true
	go c.writeLoop()
}

// close implements transport.
func (c *wsConn) close(code int, reason string, flush bool) { c.disconnect(code, reason, flush) }

// displace implements transport.
func (c *wsConn) displace() {
	c.say(errorFrame(CodeReplaced, "a newer connection of this session took its place"))
	c.disconnect(CloseReplaced, CodeReplaced, true)
}

// fail tells the peer of a connection that never joined why, and closes.
func (c *wsConn) fail(code, msg string, closeCode int) {
	c.say(errorFrame(code, msg))
	c.disconnect(closeCode, code, true)
}

func (c *wsConn) disconnect(code int, reason string, flush bool) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason, c.flush = code, reason, flush
		close(c.done)
		if !flush {
			// Unblock a write stuck on a peer that is not reading, so the
			// writer sees done and the peer leaves its room now.
			_ = c.ws.UnderlyingConn().SetWriteDeadline(time.Now())
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.pinger != nil {
			c.pinger.Stop()
		}
		// An idle connection has no writer to notice: start one to say
		// goodbye.
		c.wakeLocked()
	})
}

// writeLoop sends frames and pings until there is nothing left to write,
// or, once the connection is closing, sees an ended session out of its
// room and sends the close frame.
func (c *wsConn) writeLoop() {
	var stack [64]outFrame // a batch, without allocating
	for {
		frames, ping, closing := c.next(stack[:0])
		switch {
		case closing:
			if c.s != nil && c.s.isEnded() {
				c.s.leave()
			}
			c.finish()
			close(c.finished)
			return
		case ping != "":
			if err := c.ws.WriteControl(websocket.PingMessage, []byte(ping), time.Now().Add(writeWait)); err != nil {
				c.disconnect(websocket.CloseAbnormalClosure, "ping failed", false)
			}
		case len(frames) > 0:
			if err := c.writeBatch(frames, time.Now().Add(writeWait)); err != nil {
				c.disconnect(websocket.CloseAbnormalClosure, "write failed", false)
			}
		default:
			return // idle: the next frame starts a new writer
		}
	}
}

// next is the writer's next job. A closing connection wins over waiting
// frames, so the writer does not go on writing to a peer that reads
// nothing. A ping carries the seq of the last frame written, which its
// pong proves arrived. When there is nothing to do the writer stops being
// the writer.
func (c *wsConn) next(batch []outFrame) (frames []outFrame, ping string, closing bool) {
	if c.s != nil {
		c.s.mu.Lock()
		defer c.s.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closing():
		return nil, "", true
	case c.pingDue:
		c.pingDue = false
		ping = "0"
		if c.s != nil && c.s.tr == c {
			ping = strconv.FormatUint(c.s.out.lastTaken(), 10)
		}
		return nil, ping, false
	case len(c.preface) > 0:
		for len(c.preface) > 0 && len(batch) < cap(batch) {
			batch = append(batch, outFrame{b: c.preface[0]})
			c.preface[0] = nil
			c.preface = c.preface[1:]
		}
		return batch, "", false
	case c.s != nil:
		if batch = c.s.take(c, batch); len(batch) > 0 {
			if c.s.out.retain {
				c.pingSoon()
			}
			return batch, "", false
		}
	}
	c.writing = false
	return nil, "", false
}

// onPong lets the session go of the frames a pong proves arrived.
func (c *wsConn) onPong(data string) {
	if seq, err := strconv.ParseUint(data, 10, 64); err == nil && c.s != nil && seq > 0 {
		c.s.acked(c, seq)
	}
}

// errClosing stops a write to a peer that started disconnecting.
var errClosing = errors.New("peer is disconnecting")

// maxBatch bounds the bytes one writeBatch sends in one write.
const maxBatch = 16 << 10

// batchBuffers hold encoded batches between writes.
var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, maxBatch+maxFrameHeader); return &b }}

// writeBatch sends frames in one write to the connection instead of one
// per frame: under load most of a relay's cost is system calls. The frames
// are encoded here (unmasked text frames need only a header), which is
// safe because this goroutine is the connection's only writer, gorilla's
// writes included. Unless the queue is being flushed on purpose, a peer
// that started disconnecting gets nothing more: checked after the deadline
// is set, so that the immediate deadline disconnect sets to interrupt a
// stuck write cannot be overwritten by a later one.
func (c *wsConn) writeBatch(frames []outFrame, deadline time.Time) error {
	buf := batchBuffers.Get().(*[]byte)
	defer batchBuffers.Put(buf)
	b := (*buf)[:0]
	for _, f := range frames {
		b = appendTextFrame(b, f)
	}
	*buf = b
	conn := c.ws.UnderlyingConn()
	if err := conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if c.closing() && !c.flush {
		return errClosing
	}
	if _, err := conn.Write(b); err != nil {
		return err
	}
	for _, f := range frames {
		c.metrics.frameOut(f.b)
	}
	return nil
}

// maxFrameHeader is the longest header of a server's WebSocket frame.
const maxFrameHeader = 10

// appendTextFrame appends f, sequenced, as one unmasked, final text frame
// (RFC 6455 5.2), as a server sends it.
func appendTextFrame(b []byte, f outFrame) []byte {
	const finText = 0x80 | websocket.TextMessage
	switch n := f.wireLen(); {
	case n < 126:
		b = append(b, finText, byte(n))
	case n <= 0xffff:
		b = append(b, finText, 126, byte(n>>8), byte(n))
	default:
		b = append(b, finText, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return f.sequenced(b)
}

func (c *wsConn) closing() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// finish flushes if asked, sends the close frame and gives the peer
// closeGrace to answer it; the reader then fails and the connection closes.
// All of it is bounded by closeGrace, also for a peer that reads nothing.
func (c *wsConn) finish() {
	deadline := time.Now().Add(closeGrace)
	if c.flush {
		var stack [64]outFrame
		for {
			frames := c.flushable(stack[:0])
			if len(frames) == 0 || c.writeBatch(frames, deadline) != nil {
				break
			}
		}
	}
	if c.closeCode != websocket.CloseAbnormalClosure {
		msg := websocket.FormatCloseMessage(c.closeCode, c.closeReason)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, deadline)
	}
	_ = c.ws.SetReadDeadline(deadline)
}

// flushable takes what is left to write on a closing connection.
func (c *wsConn) flushable(batch []outFrame) []outFrame {
	if c.s != nil {
		c.s.mu.Lock()
		defer c.s.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.preface) > 0 {
		for _, f := range c.preface {
			batch = append(batch, outFrame{b: f})
		}
		c.preface = nil
		return batch
	}
	if c.s != nil {
		return c.s.take(c, batch)
	}
	return batch
}

// drainReads discards incoming frames until the connection fails, which
// happens at the latest closeGrace after the close frame went out.
func (c *wsConn) drainReads() {
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			return
		}
	}
}
