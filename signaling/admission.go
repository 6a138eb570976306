package signaling

import (
	"fmt"
	"net/http"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/tunnel"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// peerTransport is a transport as admission sees it: one that can be
// attached to a session and carry frames of its own before the session's.
type peerTransport interface {
	session.Transport
	// Attach makes s the session the transport carries; nil detaches it.
	Attach(s *session.Session)
	// Say queues an unsequenced frame of the transport's own (resume_failed,
	// a resume's welcome), to go out before the session's frames.
	Say(frame []byte)
}

// acquireConnection counts a connection (a WebSocket or an event stream)
// against connections_per_ip, or answers 429 when the client's address has
// as many as it may.
func (h *Handler) acquireConnection(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	release, ok = h.state.conns.Acquire(clientIP(r), h.Limits.ConnectionsPerIP)
	if !ok {
		h.metrics.refused(tooManyConnections)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = fmt.Fprintf(w, "too many signaling connections from your address (limit %d)\n", h.Limits.ConnectionsPerIP)
	}
	return release, ok
}

// open admits the peer of r and attaches transport t to its session,
// resumed or new, for either transport. It returns why the peer was
// refused, t then attached to nothing, or the zero refusal.
func (h *Handler) open(t peerTransport, r *http.Request) refusal {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		repl = caddy.NewReplacer()
	}
	roomName := repl.ReplaceAll(h.Room, "")
	info, why := h.admit(r, repl, roomName)
	if why.code != "" {
		h.logger.Debug("refused peer", zap.String("code", why.code), zap.String("reason", why.reason), zap.String("remote", r.RemoteAddr))
		return why
	}
	q := r.URL.Query()
	if token := q.Get("resume"); token != "" && q.Has("last_seq") && h.resumeWindow() > 0 {
		if h.resume(t, roomName, token, q.Get("last_seq"), r) {
			return refusal{}
		}
		// Through the server holding the session, if it is another one.
		if f, ok := t.(tunnel.Front); ok && h.resumeRemote(f, roomName, token, q.Get("last_seq"), r) {
			return refusal{}
		}
		t.Say(wire.Error(wire.CodeResumeFailed, "the session cannot be resumed: joining afresh"))
	}
	s := session.New(h.sessCfg, roomName, info, clientIP(r), t)
	t.Attach(s)
	if err := h.join(s, roomName, info, r); err != nil {
		t.Attach(nil)
		return h.joinRefusal(err, roomName)
	}
	h.metrics.joins.Inc()
	h.logger.Debug("peer joined", zap.String("room", roomName), zap.String("peer", s.ID()), zap.String("user", info.User))
	return refusal{}
}

// refusal is why a peer may not join: an error code, a message for people,
// and the close code. The zero value admits.
type refusal struct {
	code, reason string
	closeCode    int
}

// admit checks the origin, room and token before joining, and says who the
// peer is.
func (h *Handler) admit(r *http.Request, repl *caddy.Replacer, room string) (wire.PeerInfo, refusal) {
	if !h.origins.allowed(r) {
		return wire.PeerInfo{}, refusal{wire.CodeForbiddenOrigin, "origin " + wire.Quote(r.Header.Get("Origin")) + " may not connect", wire.CloseForbiddenOrigin}
	}
	if room == "" {
		return wire.PeerInfo{}, refusal{wire.CodeMissingRoom, "no room given (e.g. ?room=<name>)", wire.CloseMissingRoom}
	}
	if !validName(room, maxRoomLen) {
		return wire.PeerInfo{}, refusal{wire.CodeInvalidRoom, fmt.Sprintf("room name must be at most %d bytes of printable UTF-8", maxRoomLen), wire.CloseMissingRoom}
	}
	if h.tokens != nil {
		claims, err := h.tokens.Verify(r.URL.Query().Get("token"), room, time.Now())
		if err != nil {
			h.metrics.tokenRefused(TokenReason(err))
			// err never contains the token.
			return wire.PeerInfo{}, refusal{wire.CodeUnauthorized, "room token refused: " + err.Error(), wire.CloseUnauthorized}
		}
		return wire.PeerInfo{User: identity(claims.Subject), Name: identity(claims.Name)}, refusal{}
	}
	return wire.PeerInfo{User: identity(repl.ReplaceAll(h.User, "")), Name: identity(repl.ReplaceAll(h.Name, ""))}, refusal{}
}

// resumeRemote resumes a session that lives on another server of the hub
// through a tunnel to it (tunnel.Resume), c being the tunnel's front.
func (h *Handler) resumeRemote(c tunnel.Front, room, token, lastSeq string, r *http.Request) bool {
	if !tunnel.Resume(h.sessCfg, c, room, token, lastSeq, r.Host) {
		return false
	}
	h.metrics.Resume("resumed")
	h.logger.Debug("peer resumed through another server", zap.String("room", room))
	return true
}
