package session

import (
	"errors"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// handle acts on one frame within the size and rate limits; the caller
// holds s.inMu. Problems are reported to the sender only.
func (s *Session) handle(data []byte, text bool) Verdict {
	m := s.cfg.Metrics
	if !text {
		m.FrameIn("invalid", len(data))
		return BinaryRefused
	}
	if !utf8.Valid(data) {
		// Relayed verbatim, invalid UTF-8 in a text frame would make every
		// receiving browser fail its connection (RFC 6455 8.1).
		m.FrameIn("invalid", len(data))
		return Verdict{wire.CodeBadMessage, "text frames must be valid UTF-8", 0}
	}
	var in wire.Inbound
	if err := wire.DecodeInbound(data, &in); err != nil {
		m.FrameIn("invalid", len(data))
		return Verdict{wire.CodeBadMessage, "frame is not a JSON object: " + err.Error(), 0}
	}
	m.FrameIn(in.Type, len(data))
	if in.Ack > 0 && !s.peerAcked(in.Ack) {
		return Verdict{wire.CodeBadMessage, `"ack" is beyond the last frame the server sent`, 0}
	}
	if s.seen(in.Seq) {
		return Verdict{} // a resend of a frame already processed
	}
	switch in.Type {
	case wire.TypeSignal:
		return s.relay(in)
	case wire.TypeBroadcast:
		if len(in.Data) == 0 {
			return Verdict{wire.CodeBadMessage, `broadcast needs "data"`, 0}
		}
		frame := wire.RelayFrame(wire.TypeBroadcast, s.id, in.Data)
		if err := s.cfg.Hub.Deliver(s.room, s.id, "", frame); err != nil && !errors.Is(err, hub.ErrNotMember) {
			s.cfg.Logger.Warn("delivering broadcast", zap.Error(err))
			return Verdict{wire.CodeUndeliverable, "the broadcast could not be passed on to every server", 0}
		}
	case wire.TypePing:
		s.Send(wire.Pong())
	case wire.TypeLeave:
		s.End(wire.CloseNormal, "left", true)
	case "":
		return Verdict{wire.CodeBadMessage, `frame has no "type"`, 0}
	default:
		return Verdict{wire.CodeBadMessage, "unknown message type " + wire.Quote(in.Type), 0}
	}
	return Verdict{}
}

// BinaryRefused answers a binary frame.
var BinaryRefused = Verdict{wire.CodeBadMessage, "binary frames are not supported: send JSON text frames", 0}

// relay delivers a signal to its addressee.
func (s *Session) relay(in wire.Inbound) Verdict {
	if in.To == "" {
		return Verdict{wire.CodeBadMessage, `signal needs a "to" peer id`, 0}
	}
	if len(in.Data) == 0 {
		return Verdict{wire.CodeBadMessage, `signal needs "data"`, 0}
	}
	frame := wire.RelayFrame(wire.TypeSignal, s.id, in.Data)
	err := s.cfg.Hub.Deliver(s.room, s.id, in.To, frame)
	switch {
	case err == nil, errors.Is(err, hub.ErrNotMember): // a peer on its way out
	case errors.Is(err, hub.ErrUnknownPeer):
		return Verdict{wire.CodeUnknownPeer, "no peer " + wire.Quote(in.To) + " in this room", 0}
	default:
		s.cfg.Logger.Warn("delivering signal", zap.Error(err))
		return Verdict{wire.CodeUndeliverable, "the signal could not be passed on to " + wire.Quote(in.To), 0}
	}
	return Verdict{}
}
