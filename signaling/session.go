package signaling

import (
	"encoding/json"
	"errors"
	"io"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// session is one joined peer's read side: it turns frames into hub calls.
type session struct {
	peer    *wsPeer
	hub     Hub
	room    string
	maxSize int64
	idle    time.Duration // read deadline, renewed by any frame or pong
	rate    *frameRate
	metrics *hubMetrics
	logger  *zap.Logger

	leave      func()          // takes the peer out of its room, once
	writerDone <-chan struct{} // closed when the close frame is out
}

// run reads the peer's frames until the connection ends, then sees the
// peer out of its room and its close frame out.
func (s *session) run() {
	s.readLoop()
	s.leave()
	s.peer.disconnect(websocket.CloseAbnormalClosure, "", false) // no-op when already closing
	<-s.writerDone
	s.metrics.leaves.Inc()
	s.logger.Debug("peer left", zap.String("room", s.room), zap.String("peer", s.peer.id))
}

// readLoop processes the peer's frames until the connection fails or closes.
func (s *session) readLoop() {
	ws := s.peer.ws
	// Once closing, the close handshake's deadline (closeGrace) rules.
	renew := func() {
		if !s.closing() {
			_ = ws.SetReadDeadline(time.Now().Add(s.idle))
		}
	}
	renew()
	ws.SetPongHandler(func(string) error {
		renew()
		return nil
	})
	for {
		typ, r, err := ws.NextReader()
		if err != nil {
			return
		}
		if s.closing() {
			continue // discard until the peer answers our close frame
		}
		if !s.readAndProcess(typ, r) {
			return
		}
		// Renewed after handling: time spent waiting for room in other
		// peers' queues is ours, not the peer's, whose pongs are read
		// only between frames.
		renew()
	}
}

// readAndProcess reads one frame into a pooled buffer and acts on it; it
// reports false when the connection failed.
func (s *session) readAndProcess(typ int, r io.Reader) bool {
	buf := readBuffers.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= maxPooledBuffer {
			readBuffers.Put(buf)
		}
	}()
	data, err := readFrame(r, s.maxSize, buf)
	if err != nil {
		return false
	}
	if int64(len(data)) > s.maxSize {
		s.fatal(CodeTooLarge, "message exceeds the maximum size", CloseTooLarge)
		return true
	}
	s.process(typ, data)
	return true
}

func (s *session) closing() bool { return s.peer.closing() }

// process acts on one frame within the size limit, if it fits the peer's
// frame rate.
func (s *session) process(typ int, data []byte) {
	if ok, abusive := s.rate.admit(time.Now()); !ok {
		s.metrics.rateLimited.Inc()
		if abusive {
			s.fatal(CodeRateLimited, "too many frames for too long", CloseRateLimited)
		} else {
			s.reply(CodeRateLimited, "too many frames: this one was dropped")
		}
		return
	}
	switch {
	case typ != websocket.TextMessage:
		s.metrics.frameIn("invalid", len(data))
		s.reply(CodeBadMessage, "binary frames are not supported: send JSON text frames")
	case !utf8.Valid(data):
		// Relayed verbatim, invalid UTF-8 in a text frame would make every
		// receiving browser fail its connection (RFC 6455 8.1).
		s.metrics.frameIn("invalid", len(data))
		s.reply(CodeBadMessage, "text frames must be valid UTF-8")
	default:
		s.handle(data)
	}
}

// handle acts on one text frame. Errors are reported to the sender only.
func (s *session) handle(data []byte) {
	var in Inbound
	if err := decodeInbound(data, &in); err != nil {
		s.metrics.frameIn("invalid", len(data))
		s.reply(CodeBadMessage, "frame is not a JSON object: "+err.Error())
		return
	}
	s.metrics.frameIn(in.Type, len(data))
	switch in.Type {
	case TypeSignal:
		if in.To == "" {
			s.reply(CodeBadMessage, `signal needs a "to" peer id`)
			return
		}
		if len(in.Data) == 0 {
			s.reply(CodeBadMessage, `signal needs "data"`)
			return
		}
		frame := relayFrame(TypeSignal, s.peer.id, in.Data)
		if err := s.hub.Deliver(s.room, s.peer.id, in.To, frame); err != nil {
			switch {
			case errors.Is(err, ErrUnknownPeer):
				s.reply(CodeUnknownPeer, "no peer "+quote(in.To)+" in this room")
			case !errors.Is(err, ErrNotMember): // a peer on its way out
				s.logger.Warn("delivering signal", zap.Error(err))
				s.reply(CodeUndeliverable, "the signal could not be passed on to "+quote(in.To))
			}
		}
	case TypeBroadcast:
		if len(in.Data) == 0 {
			s.reply(CodeBadMessage, `broadcast needs "data"`)
			return
		}
		frame := relayFrame(TypeBroadcast, s.peer.id, in.Data)
		if err := s.hub.Deliver(s.room, s.peer.id, "", frame); err != nil && !errors.Is(err, ErrNotMember) {
			s.logger.Warn("delivering broadcast", zap.Error(err))
			s.reply(CodeUndeliverable, "the broadcast could not be passed on to every server")
		}
	case TypePing:
		s.peer.Send(pongFrame)
	case "":
		s.reply(CodeBadMessage, `frame has no "type"`)
	default:
		s.reply(CodeBadMessage, "unknown message type "+quote(in.Type))
	}
}

// reply sends a non-fatal error frame to the peer.
func (s *session) reply(code, msg string) {
	s.peer.Send(errorFrame(code, msg))
}

// fatal sends an error frame followed by a close frame.
func (s *session) fatal(code, msg string, closeCode int) {
	s.peer.Send(errorFrame(code, msg))
	s.peer.closeAfterQueued(closeCode, code)
}

// quote renders a peer-supplied string safely inside an error message.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
