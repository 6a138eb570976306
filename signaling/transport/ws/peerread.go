package ws

import (
	"net"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/gorilla/websocket"
)

// The read side of a joined peer's WebSocket. Whoever reads its bytes (the
// event loop for plain TCP on Linux, a goroutine of the connection's own
// under TLS or elsewhere), they go to one frameReader and one peerReader,
// so a peer meets the same protocol errors, close codes, pings and
// timeouts on every path. gorilla/websocket's reader serves only
// connections refused before joining.

// peerReader hands the frames a frameReader parses to the connection, and
// says how the reading ended.
type peerReader struct {
	c      *Conn
	fr     frameReader
	closed bool    // the peer's close frame came: nothing after it counts
	end    readEnd // how the reading ends, once closed
	alive  bool    // the bytes taken held a whole message or a pong
}

func newPeerReader(c *Conn) *peerReader {
	return &peerReader{c: c, fr: frameReader{maxSize: c.maxSize}}
}

// take feeds the bytes read; done says the reading is over, and how. Only
// a whole message or a pong is a sign of life (see silentTooLong): a peer
// that trickles a frame that never ends, or only pings, is as silent as
// one that sends nothing. Time spent handling the frames is not the
// peer's.
func (r *peerReader) take(b []byte) (end readEnd, done bool) {
	last := r.c.lastRead.Swap(handling)
	r.alive = false
	err := r.fr.feed(b, r)
	if r.alive {
		last = session.MonoNow()
	}
	r.c.lastRead.Store(last)
	switch {
	case err != nil:
		return readEnd{code: websocket.CloseProtocolError, reason: string(err.(protocolError)), fatal: true}, true
	case r.closed:
		return r.end, true
	}
	return readEnd{}, false
}

// message implements frameHandler.
func (r *peerReader) message(text bool, data []byte) {
	if r.closed || r.c.Closing() {
		return // discarded until the peer answers our close frame
	}
	r.alive = true
	r.c.process(text, data)
}

// control implements frameHandler: pings are answered, pongs let frames
// go, and a close frame ends the reading.
func (r *peerReader) control(op byte, payload []byte) {
	if r.closed {
		return
	}
	switch op {
	case websocket.PingMessage:
		r.c.queuePong(payload)
	case websocket.PongMessage:
		r.alive = true
		r.c.onPong(string(payload))
	case websocket.CloseMessage:
		r.closed = true
		code, err := closeFrame(payload)
		if err != nil {
			r.end = readEnd{code: websocket.CloseProtocolError, reason: string(err.(protocolError)), fatal: true}
			return
		}
		r.end = readEnd{goodbye: code == websocket.CloseNormalClosure, code: code}
	}
}

// loopReader is a peerReader as the event loop drives it (evloop.Reader).
type loopReader struct {
	*peerReader
	end   readEnd // how the reading ended, once Take says done
	ended func(readEnd)
}

// Take implements evloop.Reader.
func (r *loopReader) Take(b []byte) bool {
	end, done := r.take(b)
	r.end = end
	return done
}

// Cut implements evloop.Reader: the connection is closing (endRead).
func (r *loopReader) Cut() bool { return r.c.cutRead.Load() }

// Stopped implements evloop.Reader.
func (r *loopReader) Stopped(failed bool) {
	if failed {
		r.end = readEnd{code: websocket.CloseAbnormalClosure}
	}
	r.fr = frameReader{} // what it held of a message goes now
	r.ended(r.end)
}

// ownReadSize is the buffer of a connection read by a goroutine of its
// own: several small frames per read, and a large message in a few reads
// (the frameReader gathers it).
const ownReadSize = 1 << 10

// readOwn reads the connection on the caller's goroutine until the
// reading ends, then calls ended.
func (c *Conn) readOwn(ended func(readEnd)) {
	r := newPeerReader(c)
	c.startJudging()
	conn := c.ws.UnderlyingConn()
	buf := make([]byte, ownReadSize)
	for {
		n, err := conn.Read(buf)
		if n > 0 && !c.cutRead.Load() {
			if end, done := r.take(buf[:n]); done {
				ended(end)
				return
			}
		}
		if err != nil || c.cutRead.Load() {
			ended(readEnd{code: websocket.CloseAbnormalClosure})
			return
		}
	}
}

// startJudging has the ping clock judge the peer's silence from now on
// (see silentTooLong).
func (c *Conn) startJudging() {
	c.lastRead.Store(session.MonoNow())
	c.judged.Store(true)
	if c.Closing() {
		// Closed before its reader started: its close handshake began
		// when no reader could be cut for ignoring it (see finish).
		time.AfterFunc(session.CloseGrace, c.endRead)
	}
}

// endRead ends the reading of the connection, as a read deadline would,
// whoever reads it. The event loop reads with no deadline: shutting the
// socket's reading down makes it ready, and the loop then sees cutRead.
// The end of the stream alone would not do: Linux goes on taking a peer's
// bytes after shutdown(SHUT_RD), so one that kept sending would never
// reach it.
func (c *Conn) endRead() {
	c.cutRead.Store(true)
	conn := c.ws.UnderlyingConn()
	if tc, ok := conn.(interface{ CloseRead() error }); ok {
		_ = tc.CloseRead()
	}
	_ = conn.SetReadDeadline(time.Now())
}

var _ interface{ CloseRead() error } = (*net.TCPConn)(nil)
