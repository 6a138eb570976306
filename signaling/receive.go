package signaling

import (
	"errors"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// handle acts on one frame within the size and rate limits; the caller
// holds s.inMu. Problems are reported to the sender only.
func (s *session) handle(data []byte, text bool) verdict {
	m := s.cfg.metrics
	if !text {
		m.frameIn("invalid", len(data))
		return binaryRefused
	}
	if !utf8.Valid(data) {
		// Relayed verbatim, invalid UTF-8 in a text frame would make every
		// receiving browser fail its connection (RFC 6455 8.1).
		m.frameIn("invalid", len(data))
		return verdict{wire.CodeBadMessage, "text frames must be valid UTF-8", 0}
	}
	var in wire.Inbound
	if err := decodeInbound(data, &in); err != nil {
		m.frameIn("invalid", len(data))
		return verdict{wire.CodeBadMessage, "frame is not a JSON object: " + err.Error(), 0}
	}
	m.frameIn(in.Type, len(data))
	if in.Ack > 0 && !s.peerAcked(in.Ack) {
		return verdict{wire.CodeBadMessage, `"ack" is beyond the last frame the server sent`, 0}
	}
	if s.seen(in.Seq) {
		return verdict{} // a resend of a frame already processed
	}
	switch in.Type {
	case wire.TypeSignal:
		return s.relay(in)
	case wire.TypeBroadcast:
		if len(in.Data) == 0 {
			return verdict{wire.CodeBadMessage, `broadcast needs "data"`, 0}
		}
		frame := relayFrame(wire.TypeBroadcast, s.id, in.Data)
		if err := s.cfg.hub.Deliver(s.room, s.id, "", frame); err != nil && !errors.Is(err, hub.ErrNotMember) {
			s.cfg.logger.Warn("delivering broadcast", zap.Error(err))
			return verdict{wire.CodeUndeliverable, "the broadcast could not be passed on to every server", 0}
		}
	case wire.TypePing:
		s.Send(wire.Pong())
	case wire.TypeLeave:
		s.end(wire.CloseNormal, "left", true)
	case "":
		return verdict{wire.CodeBadMessage, `frame has no "type"`, 0}
	default:
		return verdict{wire.CodeBadMessage, "unknown message type " + quote(in.Type), 0}
	}
	return verdict{}
}

// binaryRefused answers a binary frame.
var binaryRefused = verdict{wire.CodeBadMessage, "binary frames are not supported: send JSON text frames", 0}

// relay delivers a signal to its addressee.
func (s *session) relay(in wire.Inbound) verdict {
	if in.To == "" {
		return verdict{wire.CodeBadMessage, `signal needs a "to" peer id`, 0}
	}
	if len(in.Data) == 0 {
		return verdict{wire.CodeBadMessage, `signal needs "data"`, 0}
	}
	frame := relayFrame(wire.TypeSignal, s.id, in.Data)
	err := s.cfg.hub.Deliver(s.room, s.id, in.To, frame)
	switch {
	case err == nil, errors.Is(err, hub.ErrNotMember): // a peer on its way out
	case errors.Is(err, hub.ErrUnknownPeer):
		return verdict{wire.CodeUnknownPeer, "no peer " + quote(in.To) + " in this room", 0}
	default:
		s.cfg.logger.Warn("delivering signal", zap.Error(err))
		return verdict{wire.CodeUndeliverable, "the signal could not be passed on to " + quote(in.To), 0}
	}
	return verdict{}
}
