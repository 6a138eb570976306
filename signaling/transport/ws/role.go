package ws

import (
	"strconv"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/tunnel"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
	"github.com/gorilla/websocket"
)

// role is what a WebSocket connection's frames and its end mean; Conn
// itself is only the mechanics (socket, writer, pings, reads). A
// connection plays one role at a time, set before it starts (attach,
// forward), so that no branch has to guess it from which fields are nil:
//
//   - sessionRole: the session's transport. Its writer takes frames from
//     the session's outbox after its own, and its end leaves the session
//     away or ends it.
//   - refusedRole: no session. Every connection starts so; a refused one
//     stays so and only writes its own error frame and close.
//   - frontRole: a tunnel's front. Its own frames are the home's, relayed;
//     the peer's frames go through the tunnel, and its end tells the home.
type role interface {
	// sess is the session whose lock the writer takes first and whose
	// outbox it takes from once the connection's own frames are out; nil
	// when frames come from nowhere else (see session.WriterCore.TakeLocked).
	sess() *session.Session
	// process handles a whole message of the peer's; data is not kept.
	process(c *Conn, text bool, data []byte)
	// acked lets go of the frames a pong carrying seq proves arrived.
	acked(c *Conn, seq uint64)
	// ackWait is since when frames written on c have waited for an
	// acknowledgement (session.MonoNow), or 0; the caller holds the session's lock.
	ackWait(c *Conn) int64
	// pingSeq is what a ping carries: the seq of the last frame written on
	// c, which its pong proves arrived; the caller holds both locks.
	pingSeq(c *Conn) string
	// writerClosed runs when the writer sees the connection closing,
	// before the close frame.
	writerClosed()
	// readEnded follows the end of the reading of the peer's frames, and
	// returns once the close frame is out (writerDone).
	readEnded(c *Conn, end readEnd, writerDone <-chan struct{})
}

// sessionRole is a connection carrying its session.
type sessionRole struct{ s *session.Session }

func (r sessionRole) sess() *session.Session { return r.s }

func (r sessionRole) process(c *Conn, text bool, data []byte) {
	r.s.Reply(r.s.Receive(c, data, text))
}

func (r sessionRole) acked(c *Conn, seq uint64) { r.s.Acked(c, seq) }

// ackWait is 0 once a resume moved the session to another transport:
// what waits is that one's.
func (r sessionRole) ackWait(c *Conn) int64 { return r.s.AckWaitLocked(c) }

// pingSeq is "0" on a displaced connection, whose pong must not
// acknowledge frames written on the session's new transport.
func (r sessionRole) pingSeq(c *Conn) string {
	return strconv.FormatUint(r.s.WrittenLocked(c), 10)
}

// writerClosed sees an ended session out of its room.
func (r sessionRole) writerClosed() {
	if r.s.IsEnded() {
		r.s.Leave()
	}
}

// readEnded: a session not ended goes away (or leaves, when the peer said
// goodbye or resume is off, or ends, when the server decided), and the
// close frame goes out.
func (r sessionRole) readEnded(c *Conn, end readEnd, writerDone <-chan struct{}) {
	if end.fatal {
		r.s.End(end.code, end.reason, false)
	} else {
		r.s.Lost(c, end.goodbye)
	}
	c.disconnect(end.code, end.reason, false) // no-op when already closing
	<-writerDone
	if r.s.IsEnded() {
		r.s.Leave() // normally done by the writer already
	}
}

// refusedRole is a connection without a session: nothing but its own
// frames goes out, and nothing it reads goes anywhere.
type refusedRole struct{}

func (refusedRole) sess() *session.Session      { return nil }
func (refusedRole) process(*Conn, bool, []byte) {}
func (refusedRole) acked(*Conn, uint64)         {}
func (refusedRole) ackWait(*Conn) int64         { return 0 }
func (refusedRole) pingSeq(*Conn) string        { return "0" }
func (refusedRole) writerClosed()               {}
func (refusedRole) readEnded(c *Conn, end readEnd, writerDone <-chan struct{}) {
	c.disconnect(end.code, end.reason, false)
	<-writerDone
}

// frontRole is a tunnel's front: its own frames are the home's, and the
// session, with its outbox and acknowledgements, is the home's business.
type frontRole struct{ link *tunnel.Link }

func (frontRole) sess() *session.Session { return nil }

func (r frontRole) process(c *Conn, text bool, data []byte) { r.link.Pass(c, text, data) }

func (frontRole) acked(*Conn, uint64)  {}
func (frontRole) ackWait(*Conn) int64  { return 0 }
func (frontRole) pingSeq(*Conn) string { return "0" }
func (frontRole) writerClosed()        {}

// readEnded: the home decides, told what happened.
func (r frontRole) readEnded(c *Conn, end readEnd, writerDone <-chan struct{}) {
	r.link.Close(end.tunnelCode(), end.reason)
	c.disconnect(end.code, end.reason, false)
	<-writerDone
}

// readEnd is how the reading of a connection ended: whether the peer said
// goodbye, the close frame to send back (websocket.CloseAbnormalClosure
// for none: the connection failed), and whether the server decided the
// end (a protocol error, whose reasons are a few words, well within a
// close frame's 123 bytes), which ends the session at once, as any other
// fatal error does. The close frame is the echo of the peer's, or 1002.
type readEnd struct {
	goodbye bool
	code    int
	reason  string
	fatal   bool
}

// tunnelCode is the close code a front passes on to the home (see
// the tunnel's homeEnd.Closed).
func (end readEnd) tunnelCode() int {
	switch {
	case end.goodbye:
		return wire.CloseNormal
	case end.fatal:
		return end.code
	}
	return websocket.CloseAbnormalClosure
}

// process hands a message from the peer to what its role says: its
// session, or a front's tunnel to the session's home. data is not kept.
func (c *Conn) process(text bool, data []byte) { c.role.process(c, text, data) }
