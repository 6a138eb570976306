package signaling

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/ws"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// A WebSocket connection's life, in the order it happens:
//
//  1. serveWebSocket: connections_per_ip, the upgrade (ws.Upgrade);
//  2. open (admission.go), which the SSE endpoint shares: origin, room
//     and token checks (admit), then either a resume of the session the
//     request's resume token names, here or through another server, or a
//     fresh session that joins the room (a failed resume says
//     resume_failed and joins afresh);
//  3. ws.Conn.Run: the connection reads and writes by itself from here
//     on (package ws: the event loop or a goroutine of its own reads, the
//     writer runs while frames wait);
//  4. the end (the connection's role): a session that ended (leave,
//     eviction, shutdown) is seen out of its room by the writer; a
//     connection lost without a goodbye leaves its session away
//     (Session.Lost) for the resume window; the connection's place among
//     its address's is given back.

var _ peerTransport = (*ws.Conn)(nil)

// serveWebSocket upgrades the request and runs the connection.
func (h *Handler) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	release, ok := h.acquireConnection(w, r)
	if !ok {
		return
	}
	conn, err := ws.Upgrade(w, r)
	if err != nil {
		release()
		// The upgrader has already written an HTTP error response.
		h.logger.Debug("websocket upgrade failed", zap.Error(err))
		return
	}
	c := ws.NewConn(conn, h.metrics, h.MaxMessageSize)
	if why := h.open(c, r); why.code != "" {
		h.metrics.refused(why.code)
		c.Refuse(why.code, why.reason, why.closeCode, time.Duration(h.PingInterval))
		release()
		_ = conn.Close()
		return
	}
	// The connection outlives the request (see run); it gives its place
	// among its address's connections back when it ends.
	c.Run(time.Duration(h.PingInterval), release)
}

// resume attaches t to the session token names, for a client that
// processed its frames up to lastSeq.
func (h *Handler) resume(t peerTransport, room, token, lastSeq string, r *http.Request) bool {
	s, gen := h.state.sessions.Lookup(room, token)
	n, ok := session.ParseLastSeq(lastSeq)
	if s == nil || !ok {
		h.metrics.Resume("failed")
		return false
	}
	t.Attach(s)
	w := s.Resume(t, gen, n, h.resumedWelcome(s, r))
	if w == nil {
		t.Attach(nil)
		h.metrics.Resume("failed")
		return false
	}
	t.Say(w)
	h.metrics.Resume("resumed")
	h.logger.Debug("peer resumed", zap.String("room", room), zap.String("peer", s.ID()))
	return true
}

// join puts a fresh session in its room, taking over the seat of its own
// stale connection when resume is off and the request presents that
// session's token. The error says why the peer may not join (joinRefusal).
func (h *Handler) join(s *session.Session, roomName string, info wire.PeerInfo, r *http.Request) error {
	req := hub.JoinRequest{
		Info:          info,
		MaxPeers:      h.MaxPeers,
		MaxRooms:      h.Limits.MaxRooms,
		MaxPeersTotal: h.Limits.MaxPeersTotal,
		Welcome:       h.welcomeBuilder(s, roomName, info.User, r),
	}
	if q := r.URL.Query(); q.Get("resume") != "" && !q.Has("last_seq") {
		req.Replace = h.takeover(q.Get("resume"), roomName)
	}
	replaced, err := s.Join(req)
	if err != nil {
		return err
	}
	if replaced != nil {
		h.logger.Debug("peer took over its session's seat", zap.String("room", roomName), zap.String("replaced", replaced.ID()))
		evict(replaced, wire.CodeReplaced, wire.ReplacedReason, wire.CloseReplaced)
	}
	return nil
}

// takeover returns the peer id whose seat a new client instance (a
// reloaded page) may take over with its stored token: only the session's
// current token does, where the session is known here.
func (h *Handler) takeover(token, room string) string {
	id, gen, ok := session.ParseToken(token, h.Hub, room)
	if !ok {
		return ""
	}
	if s, _ := h.state.sessions.Lookup(room, token); s != nil && gen != s.CurrentGen() {
		return ""
	}
	return id
}

// joinRefusal says why a session could not join room.
func (h *Handler) joinRefusal(err error, room string) refusal {
	switch {
	case errors.Is(err, hub.ErrRoomFull):
		return refusal{wire.CodeRoomFull, fmt.Sprintf("room is full (%d peers)", h.MaxPeers), wire.CloseRoomFull}
	case errors.Is(err, hub.ErrHubFull):
		return refusal{wire.CodeUnavailable, "the server holds as many rooms or peers as it may", wire.CloseGoingAway}
	default:
		h.logger.Error("joining room", zap.String("room", room), zap.Error(err))
		return refusal{wire.CodeUnavailable, "signaling is shutting down", wire.CloseGoingAway}
	}
}

// evict disconnects a peer the hub handed back, with an error frame where
// the peer can carry one.
func evict(p hub.Peer, code, msg string, closeCode int) {
	if s, ok := p.(*session.Session); ok {
		s.Fatal(code, msg, closeCode)
		return
	}
	p.Close(closeCode, code)
}

// welcomeBuilder returns the function that renders a fresh session's
// welcome frame.
func (h *Handler) welcomeBuilder(s *session.Session, room, user string, r *http.Request) func([]wire.PeerInfo) []byte {
	ice := h.iceServers(r, user)
	return func(members []wire.PeerInfo) []byte {
		return wire.Encode(wire.Welcome{
			Type: wire.TypeWelcome, ID: s.ID(), Room: room, Peers: members, ICEServers: ice,
			Resume: session.Token(h.Hub, room, s.ID(), 0), ResumeWindow: h.resumeWindowSeconds(),
		})

	}
}

// resumedWelcome returns the function that renders the welcome answering
// a resume.
func (h *Handler) resumedWelcome(s *session.Session, r *http.Request) func([]wire.PeerInfo, string, uint64) []byte {
	ice := h.iceServers(r, s.User())
	return func(members []wire.PeerInfo, token string, ack uint64) []byte {
		return wire.Encode(wire.Welcome{
			Type: wire.TypeWelcome, ID: s.ID(), Room: s.Room(), Peers: members, ICEServers: ice,
			Resume: token, ResumeWindow: h.resumeWindowSeconds(), Resumed: true, Ack: &ack,
		})

	}
}

// iceServers issues fresh TURN credentials, if configured, as the welcome
// carries them.
func (h *Handler) iceServers(r *http.Request, user string) []wire.ICEServer {
	if h.Credentials == nil {
		return nil
	}
	return wireICEServers(h.Credentials.IssueFor(r, time.Now(), user).ICEServers)
}

// wireICEServers converts issued servers to the welcome's entries: the
// same fields, declared again in wire so that the wire needs no turncreds.
// None issued gives an empty list, which the welcome omits as it did nil.
func wireICEServers(issued []turncreds.ICEServer) []wire.ICEServer {
	out := make([]wire.ICEServer, len(issued))
	for i, s := range issued {
		out[i] = wire.ICEServer(s)
	}
	return out
}

// resumeWindowSeconds is the resume window as the welcome states it.
func (h *Handler) resumeWindowSeconds() int {
	w := h.resumeWindow()
	if w <= 0 {
		return 0
	}
	return max(1, int(w/time.Second))
}
