package session

import "time"

// What the rooms API shows of a session (webrtc_rooms' member listing).

// Kinder is implemented by a transport that names its kind for the rooms
// API: "websocket" or "sse".
type Kinder interface {
	Kind() string
}

// kindOf is t's kind, or was when t does not name one (a tunnel, which
// carries a transport of another server's).
func kindOf(t Transport, was string) string {
	if k, ok := t.(Kinder); ok {
		return k.Kind()
	}
	return was
}

// JoinedAt is when the session joined its room; zero before it did.
func (s *Session) JoinedAt() time.Time { return s.joined }

// TransportKind is the kind of the transport carrying the session, or of
// the last one while it is away: "websocket" or "sse".
func (s *Session) TransportKind() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kind
}

// Away reports whether the session lost its connection and waits for a
// resume.
func (s *Session) Away() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tr == nil && !s.IsEnded()
}
