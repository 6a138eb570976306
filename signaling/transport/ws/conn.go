package ws

import (
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/tunnel"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/ws/evloop"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// testHookLeftover, when set, is called when a write on a sender's
// goroutine leaves bytes over for the writer goroutine.
var testHookLeftover func()

// Conn is a WebSocket connection's mechanics; its role (role.go) says
// what its frames and its end mean: a session's transport, a connection
// refused before joining, or a tunnel's front. At most one goroutine
// (the writer) writes at a time; the connection's own goroutine does all
// reads. The writer runs only while there is something to write: an idle
// peer has no writer goroutine, which is most of what an idle peer would
// otherwise cost. Frames come from the session's outbox, if its role has
// one, after the connection's own unsequenced frames (a refusal, a
// resume's welcome, a front's relayed frames).
type Conn struct {
	ws      *websocket.Conn
	role    role  // what its frames and its end mean (role.go)
	maxSize int64 // of a frame read
	metrics session.Metrics

	// The preface, the locks' order, the batch step and the close state
	// (writercore.go); its mu guards the writer's fields that follow.
	session.WriterCore
	writing  bool // a writer goroutine is running
	pingDue  bool // the writer is to send a ping
	finished chan struct{}
	// Set by start; until then frames are only queued.
	pingInterval time.Duration
	pinging      bool  // the pingClock ticks for this connection
	pingAt       int64 // session.MonoNow when the pingClock ticks for it next
	pingSlot     int   // its place in the pingClock, under the clock's lock

	// raw is the connection when a sender may write to it without
	// blocking (see send): plain TCP on Linux; nil under TLS.
	raw rawWriter
	// tail is what a write from a sender's goroutine left over for the
	// writer goroutine to write first; with tailHeld, that write left the
	// connection's write lock held for finishWrite.
	tail      []byte
	tailHeld  bool
	lastWrite int64 // session.MonoNow when the writer last took frames
	lastPing  int64 // session.MonoNow when the writer last sent a ping

	// Set for a connection a peerReader reads (peerread.go): when the
	// peer last gave a sign of life (session.MonoNow), and how long it may give
	// none before the ping clock cuts it.
	judged   atomic.Bool
	lastRead atomic.Int64
	idle     time.Duration
	cutRead  atomic.Bool // its reader is to stop (endRead)
	// A pong to send: the reader does not write it itself.
	pong    []byte
	pongDue bool
}

var (
	_ session.Transport = (*Conn)(nil)
	_ tunnel.Front      = (*Conn)(nil)
	_ tunnel.Client     = (*Conn)(nil)
)

// NewConn makes the connection of an upgraded WebSocket, whose
// messages are at most maxSize bytes; it has no role but refusal until
// Attach or Forward gives it one.
func NewConn(ws *websocket.Conn, metrics session.Metrics, maxSize int64) *Conn {
	c := &Conn{ws: ws, role: refusedRole{}, metrics: metrics, maxSize: maxSize}
	c.raw, _ = ws.UnderlyingConn().(rawWriter)
	return c
}

// rawWriter is a connection a sender may write to without blocking.
type rawWriter interface {
	// TryWrite writes what the socket takes of b at once; held says it
	// wrote only part of it and kept the connection's write lock, so
	// that nothing else is written before FinishWrite writes the rest.
	TryWrite(b []byte) (n int, held bool, err error)
	// FinishWrite writes the rest of a held TryWrite, blocking until
	// deadline, and releases the lock.
	FinishWrite(rest []byte, deadline time.Time) error
}

// Run starts the connection of a peer that was admitted: its writer and
// pings, and the reading of its frames, by the event loop for plain TCP on
// Linux (package evloop), else by a goroutine of its own. It returns at
// once: the connection outlives the request, so that an idle peer does not
// keep the request's goroutine, parked under Caddy's middleware stack with
// its grown stack, nor what that goroutine holds (net/http's connection
// buffers, the request). Once the reading ended and the close frame is out
// (the role's readEnded), the socket is closed and after runs.
func (c *Conn) Run(pingInterval time.Duration, after func()) {
	writerDone := c.start(pingInterval)
	ended := func(end readEnd) {
		// Hijacked connections are ours to close; Caddy's shutdown does not.
		defer c.ws.Close()
		defer after()
		c.role.readEnded(c, end, writerDone)
	}
	if hook := testHookOpened.Load(); hook != nil {
		(*hook)(c)
	}
	c.startJudging()
	if evloop.Read(c.ws.UnderlyingConn(), &loopReader{peerReader: newPeerReader(c), ended: ended}) {
		return
	}
	go c.readOwn(ended)
}

// testHookOpened, when set, is called with every connection that joined,
// before its reader starts.
var testHookOpened atomic.Pointer[func(*Conn)]

// Refuse sends a fatal error frame and a close frame to a peer that did
// not join, then reads until the peer answers the close, so it sees both.
func (c *Conn) Refuse(code, reason string, closeCode int, pingInterval time.Duration) {
	// Bounds the wait should the close frame never go out; finish() then
	// shortens it to CloseGrace.
	_ = c.ws.SetReadDeadline(time.Now().Add(session.WriteWait + session.CloseGrace))
	writerDone := c.start(pingInterval)
	c.Fail(code, reason, closeCode)
	c.drainReads()
	<-writerDone
}

// start lets writers run and pings the peer every pingInterval; the
// returned channel closes once the close frame is out.
func (c *Conn) start(pingInterval time.Duration) <-chan struct{} {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	c.pingInterval = pingInterval
	c.idle = 2 * pingInterval
	c.finished = make(chan struct{})
	c.lastPing = session.MonoNow() // the keep-alive clock starts now
	c.pinging = true
	c.armPing(c.lastPing + int64(pingInterval))
	c.wakeLocked()
	return c.finished
}

// pingTick sends a ping if one is due, else re-arms the timer for when
// one will be. The timer's goroutine may write the ping itself (see send).
func (c *Conn) pingTick() {
	if c.silentTooLong() {
		c.endRead() // the loop reads with no deadline: this is it
		return
	}
	if c.pingWanted() {
		c.Send()
	}
}

// silentTooLong tells whether the peer sent no whole message and no pong
// for the idle time (two ping intervals), as its reader judges them.
func (c *Conn) silentTooLong() bool {
	if !c.judged.Load() {
		return false
	}
	last := c.lastRead.Load()
	return last != handling && session.MonoNow()-last >= int64(c.idle)
}

// silentAt is when (session.MonoNow) the peer will have been silent too long,
// unless it gives a sign of life first; 0 when that is not judged now.
func (c *Conn) silentAt() int64 {
	last := c.lastRead.Load()
	if !c.judged.Load() || last == handling {
		return 0
	}
	return last + int64(c.idle)
}

// handling is lastRead while the loop handles the connection's frames:
// time spent on them, waiting for room in other peers' queues say, is
// ours, not the peer's.
const handling = math.MaxInt64

// ackDelay bounds how long frames kept for replay wait without any
// acknowledgement before a ping asks for one: the peer's pong, or an
// "ack" on a frame of its own, lets them go. A peer that acknowledges
// as it talks needs no such ping, and one that listens holds a few
// seconds of its frames, an idle one none. A variable for tests.
var ackDelay = 3 * time.Second

// pingWanted tells whether a ping is due now: the keep-alive one every
// pingInterval, or one asking for the acknowledgement of frames that
// waited ackDelay for one. Otherwise it re-arms the timer for the earlier
// of the two.
func (c *Conn) pingWanted() bool {
	s := c.role.sess()
	c.LockWith(s)
	defer c.UnlockWith(s)
	if c.Closing() {
		return false
	}
	now, at := session.MonoNow(), c.lastPing+int64(c.pingInterval)
	if wait := c.ackWaitSince(); wait != 0 {
		at = min(at, wait+int64(ackDelay))
	}
	if now < at {
		c.armPing(c.judgeBy(at))
		return false
	}
	c.pingDue, c.lastPing = true, now
	c.armPing(c.judgeBy(now + int64(c.pingInterval)))
	return true
}

// judgeBy is at, or sooner when the peer will have been silent too long
// by then: it is cut on time, not at the next ping after.
func (c *Conn) judgeBy(at int64) int64 {
	if silent := c.silentAt(); silent != 0 && silent < at {
		return silent
	}
	return at
}

// armPing has the pingClock tick for c at (session.MonoNow); the caller holds
// c.mu.
func (c *Conn) armPing(at int64) {
	c.pingAt = at
	pings.set(c, at)
}

// ackWaitSince is since when written frames have waited for an
// acknowledgement without any coming (session.MonoNow), or 0; the caller holds
// the session's lock.
func (c *Conn) ackWaitSince() int64 { return c.role.ackWait(c) }

// ackPing is the ping to send with frames just taken: when earlier
// frames have waited ackDelay for an acknowledgement, a ping asking for
// one rides along, in the same write, carrying the last frame's seq.
// Otherwise the timer makes sure one comes within ackDelay (pingSoon).
// now is session.MonoNow; the caller holds the session's lock and c.mu.
func (c *Conn) ackPing(now int64) string {
	if !c.pinging || c.Closing() {
		return ""
	}
	if wait := c.ackWaitSince(); wait == 0 || now-wait < int64(ackDelay) {
		c.pingSoon(now)
		return ""
	}
	c.lastPing = now
	c.armPing(c.judgeBy(now + int64(c.pingInterval))) // this ping is also the keep-alive
	return c.role.pingSeq(c)
}

// pingSoon makes the timer fire within ackDelay, when it would fire
// later; the caller holds c.mu.
func (c *Conn) pingSoon(now int64) {
	if !c.pinging || c.Closing() {
		return
	}
	if at := now + int64(ackDelay); c.pingAt > at {
		c.armPing(at)
	}
}

// Attach implements peerTransport; it is called before start. Detached,
// the connection is back to having no session.
func (c *Conn) Attach(s *session.Session) {
	if s == nil {
		c.role = refusedRole{}
		return
	}
	c.role = sessionRole{s}
}

// Say queues an unsequenced frame of the connection's own.
func (c *Conn) Say(frame []byte) {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	c.QueueLocked(frame)
	c.wakeLocked()
}

// Relay queues a frame a front received from the session's home. A
// client that does not read them is cut off; it resumes.
func (c *Conn) Relay(frame []byte) {
	c.Mu.Lock()
	queued := c.RelayLocked(frame)
	if queued {
		c.wakeLocked()
	}
	c.Mu.Unlock()
	if !queued {
		c.disconnect(websocket.CloseAbnormalClosure, "outbound queue full", false)
	}
}

// EndFront implements tunnel.Front.
func (c *Conn) EndFront(code int, reason string) { c.disconnect(code, reason, true) }

// Forward implements tunnel.Front.
func (c *Conn) Forward(link *tunnel.Link) { c.role = frontRole{link} }

// Wake implements transport.
func (c *Conn) Wake() {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	c.wakeLocked()
}

// wakeLocked starts the writer unless one is running or the connection
// has not started; the caller holds c.mu.
func (c *Conn) wakeLocked() {
	if c.writing || c.finished == nil {
		return
	}
	c.writing = true
	go c.writeLoop()
}

// Send implements transport. On a plain TCP connection with no writer
// running, the caller's goroutine becomes the writer for as long as the
// socket takes frames without blocking: a relayed frame then costs one
// system call and no goroutine switch, which at a few frames per second
// per peer is most of what the runtime would spend on it. The close, and
// what a full socket leaves over, are left to a writer goroutine, so a
// peer that does not read still holds up only its own writer.
func (c *Conn) Send() {
	c.Mu.Lock()
	if !c.becomeInlineWriter() {
		c.wakeLocked()
		c.Mu.Unlock()
		return
	}
	c.Mu.Unlock()
	c.writeInline()
}

// becomeInlineWriter makes the caller the writer if the connection can
// be written to without blocking and nobody else is; the caller holds
// c.mu.
func (c *Conn) becomeInlineWriter() bool {
	if c.raw == nil || c.writing || c.finished == nil {
		return false
	}
	// A peer sent to this often gets a writer goroutine, which writes
	// the frames that queue meanwhile in one batch: under a flood a
	// system call per frame would cost more than the goroutine.
	if session.MonoNow()-c.lastWrite < int64(inlineGap) {
		return false
	}
	c.writing = true
	return true
}

// inlineGap is how long after a write the next one goes to a writer
// goroutine rather than a sender's.
const inlineGap = time.Millisecond

// writeInline is the writer on a sender's goroutine; see send.
func (c *Conn) writeInline() {
	// Small: a sender's goroutine may be deep in Caddy's handlers, and
	// frames come one at a time here (see inlineGap).
	var stack [8]session.Frame
	for {
		j := c.next(stack[:0], true)
		switch {
		case j.handover:
			go c.writeLoop()
			return
		case len(j.frames) == 0 && j.ping == "":
			return // next stopped being the writer
		}
		rest, held, err := c.tryWrite(j.frames, j.ping)
		switch {
		case err != nil:
			c.disconnect(websocket.CloseAbnormalClosure, "write failed", false)
			go c.writeLoop() // sees the connection closing
			return
		case rest != nil:
			if testHookLeftover != nil {
				testHookLeftover()
			}
			c.Mu.Lock()
			c.tail, c.tailHeld = rest, held
			c.Mu.Unlock()
			go c.writeLoop()
			return
		}
	}
}

// tryWrite encodes frames, or a ping, and writes them without waiting for
// the socket; rest is a copy of what did not go out (see rawWriter).
func (c *Conn) tryWrite(frames []session.Frame, ping string) (rest []byte, held bool, err error) {
	buf := session.BatchBuffers.Get().(*[]byte)
	defer session.BatchBuffers.Put(buf)
	b := appendBatch((*buf)[:0], frames, ping)
	*buf = b
	n, held, err := c.raw.TryWrite(b)
	if err != nil {
		return nil, false, err
	}
	for _, f := range frames {
		c.metrics.FrameOut(f.B)
	}
	if n < len(b) {
		rest = slices.Clone(b[n:]) // b goes back to its pool
	}
	return rest, held, nil
}

// Close implements transport.
func (c *Conn) Close(code int, reason string, flush bool) { c.disconnect(code, reason, flush) }

// Displace implements transport.
func (c *Conn) Displace() { c.DisplaceBy(c) }

// Fail tells the peer of a connection that never joined why, and closes.
func (c *Conn) Fail(code, msg string, closeCode int) {
	c.Say(wire.Error(code, msg))
	c.disconnect(closeCode, code, true)
}

func (c *Conn) disconnect(code int, reason string, flush bool) {
	c.CloseOnce(code, reason, flush, func() {
		if !flush {
			// Unblock a write stuck on a peer that is not reading, so the
			// writer sees done and the peer leaves its room now.
			_ = c.ws.UnderlyingConn().SetWriteDeadline(time.Now())
		}
		c.Mu.Lock()
		defer c.Mu.Unlock()
		if c.pinging {
			pings.stop(c)
		}
		// An idle connection has no writer to notice: start one to say
		// goodbye.
		c.wakeLocked()
	})
}

// writeLoop sends frames and pings until there is nothing left to write,
// or, once the connection is closing, sees an ended session out of its
// room and sends the close frame.
func (c *Conn) writeLoop() {
	var stack [64]session.Frame // a batch, without allocating
	for {
		j := c.next(stack[:0], false)
		switch frames, ping := j.frames, j.ping; {
		case j.closing:
			c.role.writerClosed()
			c.finish()
			close(c.finished)
			return
		case j.pong != nil:
			if err := c.ws.WriteControl(websocket.PongMessage, j.pong, time.Now().Add(session.WriteWait)); err != nil {
				c.disconnect(websocket.CloseAbnormalClosure, "write failed", false)
			}
		case j.tail != nil:
			if err := c.writeTail(j, time.Now().Add(session.WriteWait)); err != nil {
				c.disconnect(websocket.CloseAbnormalClosure, "write failed", false)
			}
		case len(frames) > 0 || ping != "":
			if err := c.writeBatch(frames, ping, time.Now().Add(session.WriteWait)); err != nil {
				c.disconnect(websocket.CloseAbnormalClosure, "write failed", false)
			}
		default:
			return // idle: the next frame starts a new writer
		}
	}
}

// job is the writer's next piece of work.
type job struct {
	frames   []session.Frame
	tail     []byte // left over by a write on a sender's goroutine
	tailHeld bool   // see Conn.tailHeld
	ping     string
	pong     []byte
	closing  bool
	handover bool // for a writer on a sender's goroutine: leave it to a writer goroutine
}

// next is the writer's next job. A closing connection wins over waiting
// frames, so the writer does not go on writing to a peer that reads
// nothing. A ping carries the seq of the last frame written, which its
// pong proves arrived. When there is nothing to do the writer stops being
// the writer. An inline writer (see send) hands a close or a leftover on.
func (c *Conn) next(batch []session.Frame, inline bool) (j job) {
	s := c.role.sess()
	c.LockWith(s)
	defer c.UnlockWith(s)
	switch {
	case inline && (c.Closing() || c.tail != nil || c.pongDue):
		j.handover = true
		return j
	case c.tail != nil:
		j.tail, j.tailHeld, c.tail = c.tail, c.tailHeld, nil
		return j
	case c.Closing():
		j.closing = true
		return j
	case c.pongDue:
		c.pongDue = false
		j.pong = append([]byte{}, c.pong...) // not nil, if empty
		return j
	case c.pingDue:
		c.pingDue = false
		j.ping = c.role.pingSeq(c)
		return j
	}
	if frames, fromOutbox := c.TakeLocked(s, c, batch, false); len(frames) > 0 {
		if fromOutbox { // s is not nil: the frames are its
			c.lastWrite = session.MonoNow()
			if s.Replays() {
				j.ping = c.ackPing(c.lastWrite)
			}
		}
		j.frames = frames
		return j
	}
	c.writing = false
	return j
}

// onPong lets the session go of the frames a pong proves arrived.
func (c *Conn) onPong(data string) {
	if seq, err := strconv.ParseUint(data, 10, 64); err == nil && seq > 0 {
		c.role.acked(c, seq)
	}
}

// writeBatch sends frames in one write to the connection instead of one
// per frame: under load most of a relay's cost is system calls. The frames
// are encoded here (unmasked text frames need only a header), which is
// safe because this goroutine is the connection's only writer, gorilla's
// writes included. Unless the queue is being flushed on purpose, a peer
// that started disconnecting gets nothing more: checked after the deadline
// is set, so that the immediate deadline disconnect sets to interrupt a
// stuck write cannot be overwritten by a later one.
func (c *Conn) writeBatch(frames []session.Frame, ping string, deadline time.Time) error {
	return session.WriteFrames(frames, c.metrics,
		func(b []byte, frames []session.Frame) []byte { return appendBatch(b, frames, ping) },
		func(b []byte) error { return c.writeBytes(b, deadline) })
}

// writeBytes writes b to the connection by deadline.
func (c *Conn) writeBytes(b []byte, deadline time.Time) error {
	conn := c.ws.UnderlyingConn()
	if err := conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if c.Cut() {
		return session.ErrClosing
	}
	_, err := conn.Write(b)
	return err
}

// writeTail writes what a write on a sender's goroutine left over.
func (c *Conn) writeTail(j job, deadline time.Time) error {
	if !j.tailHeld {
		return c.writeBytes(j.tail, deadline)
	}
	if c.Cut() {
		// Not a byte more, but the write lock must go.
		return c.raw.FinishWrite(nil, time.Now())
	}
	return c.raw.FinishWrite(j.tail, deadline)
}

// appendBatch appends frames and then, unless empty, a ping carrying ping.
func appendBatch(b []byte, frames []session.Frame, ping string) []byte {
	for _, f := range frames {
		b = appendTextFrame(b, f)
	}
	if ping != "" { // a few digits: a control frame without extended length
		b = append(b, 0x80|websocket.PingMessage, byte(len(ping)))
		b = append(b, ping...)
	}
	return b
}

// maxFrameHeader is the longest header of a server's WebSocket frame.
const maxFrameHeader = 10

// appendTextFrame appends f, sequenced, as one unmasked, final text frame
// (RFC 6455 5.2), as a server sends it.
func appendTextFrame(b []byte, f session.Frame) []byte {
	const finText = 0x80 | websocket.TextMessage
	switch n := f.WireLen(); {
	case n < 126:
		b = append(b, finText, byte(n))
	case n <= 0xffff:
		b = append(b, finText, 126, byte(n>>8), byte(n))
	default:
		b = append(b, finText, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return f.Sequenced(b)
}

// finish flushes if asked, sends the close frame and gives the peer
// closeGrace to answer it; the reader then fails and the connection closes.
// All of it is bounded by closeGrace, also for a peer that reads nothing.
func (c *Conn) finish() {
	deadline := time.Now().Add(session.CloseGrace)
	if c.FlushOnClose {
		var stack [64]session.Frame
		for {
			frames := c.flushable(stack[:0])
			if len(frames) == 0 || c.writeBatch(frames, "", deadline) != nil {
				break
			}
		}
	}
	if c.CloseCode != websocket.CloseAbnormalClosure {
		msg := websocket.FormatCloseMessage(c.CloseCode, c.CloseReason)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, deadline)
	}
	_ = c.ws.SetReadDeadline(deadline) // gorilla's reader, for a refused peer
	if c.judged.Load() {
		time.AfterFunc(session.CloseGrace, c.endRead)
	}
}

// queuePong has the writer answer a ping with a pong carrying data; only
// the latest ping is answered (RFC 6455 5.5.3).
func (c *Conn) queuePong(data []byte) {
	c.Mu.Lock()
	if c.Closing() {
		c.Mu.Unlock()
		return
	}
	c.pong, c.pongDue = append(c.pong[:0], data...), true
	c.Mu.Unlock()
	c.Send()
}

// flushable takes what is left to write on a closing connection.
func (c *Conn) flushable(batch []session.Frame) []session.Frame {
	s := c.role.sess()
	c.LockWith(s)
	defer c.UnlockWith(s)
	frames, _ := c.TakeLocked(s, c, batch, true)
	return frames
}

// drainReads discards incoming frames until the connection fails, which
// happens at the latest closeGrace after the close frame went out.
func (c *Conn) drainReads() {
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			return
		}
	}
}

// Kind implements session.Kinder.
func (*Conn) Kind() string { return "websocket" }
