package session

import (
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// Event types a session reports to Config.Events: what the webhooks send.
const (
	EventRoomStarted  = "room_started"  // its join created the room
	EventRoomFinished = "room_finished" // its leave emptied the room
	EventPeerJoined   = "peer_joined"
	EventPeerLeft     = "peer_left" // with Reason
	EventPeerResumed  = "peer_resumed"
)

// Event is a change of a session's membership. Room events come from the
// session whose join or leave started or finished the room (hub.Watcher);
// with a clustered hub, from the one server whose compare-and-set did.
type Event struct {
	Type   string
	Room   string
	Peer   wire.PeerInfo
	Reason string // EventPeerLeft's: LeftReason
	At     time.Time
}

// LeftReason names how a session that ended with close code code left, for
// EventPeerLeft; a lost connection whose session was not resumed is "lost".
func LeftReason(code int) string {
	switch code {
	case wire.CloseNormal:
		return "left"
	case wire.CloseGoingAway:
		return "shutdown"
	case wire.CloseRoomClosed: // the rooms API closed the room
		return "room_closed"
	case wire.CloseRemoved: // the rooms API removed the peer
		return "removed"
	case wire.CloseTooSlow:
		return "slow"
	case wire.CloseReplaced:
		return "replaced"
	case wire.CloseTooLarge:
		return "too_large"
	case wire.CloseRateLimited:
		return "rate_limited"
	}
	return "error"
}

// ReasonLost is EventPeerLeft's reason for a session whose connection was
// lost and which was not resumed (the window ran out, or none was open),
// and, with a clustered hub, for a member of a server that stopped.
const ReasonLost = "lost"

var _ hub.Watcher = (*Session)(nil)

// Joined implements hub.Watcher.
func (s *Session) Joined(started bool) {
	if !s.joinedEv.CompareAndSwap(false, true) {
		return
	}
	if started {
		s.emit(EventRoomStarted, "")
	}
	s.emit(EventPeerJoined, "")
}

// Left implements hub.Watcher.
func (s *Session) Left(finished bool) {
	if !s.joinedEv.Load() || !s.leftEv.CompareAndSwap(false, true) {
		return
	}
	s.mu.Lock()
	why := s.why
	s.mu.Unlock()
	if why == "" {
		why = LeftReason(0)
	}
	s.emit(EventPeerLeft, why)
	if finished {
		s.emit(EventRoomFinished, "")
	}
}

// emit reports an event of the session's to Config.Events, if set.
func (s *Session) emit(typ, reason string) {
	if s.cfg.Events == nil {
		return
	}
	s.cfg.Events(Event{Type: typ, Room: s.room, Peer: wire.PeerInfo{ID: s.id, User: s.user, Name: s.name}, Reason: reason, At: time.Now()})
}
