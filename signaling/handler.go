package signaling

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/webclient"
	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// Defaults of the handler's options.
const (
	DefaultRoom           = "{http.request.uri.query.room}"
	DefaultMaxPeers       = 6
	DefaultMaxMessageSize = 64 << 10
	DefaultPingInterval   = 30 * time.Second
	DefaultHub            = "default"
	// maxRoomLen bounds room names so they stay usable as map keys and in logs.
	maxRoomLen = 128
)

// Handler serves WebRTC signaling rooms over WebSocket. Module ID
// http.handlers.webrtc_signaling.
type Handler struct {
	// Room is a placeholder expression giving the room to join.
	// Default: {http.request.uri.query.room}.
	Room string `json:"room,omitempty"`
	// MaxPeers is how many peers a room holds; the next one is refused
	// with room_full. Default 6.
	MaxPeers int `json:"max_peers,omitempty"`
	// MaxMessageSize is the largest frame a peer may send, in bytes.
	// Default 64 KiB.
	MaxMessageSize int64 `json:"max_message_size,omitempty"`
	// PingInterval is how often the server pings each peer; a peer that
	// answers nothing for two intervals is dropped. Default 30s.
	PingInterval caddy.Duration `json:"ping_interval,omitempty"`
	// Origins lists the Origin header values allowed to connect, such as
	// "https://example.com", or "*" for any. Default: the request's own host.
	Origins []string `json:"origins,omitempty"`
	// Hub names the set of rooms this handler uses. Handlers with the same
	// hub name share rooms, and rooms survive config reloads as long as a
	// handler with their hub name stays loaded. Default "default".
	Hub string `json:"hub,omitempty"`
	// BackendRaw is the hub backend, a module in the namespace
	// http.handlers.webrtc_signaling.hubs: memory (the default) keeps rooms
	// in this process. Handlers sharing a hub must use the same backend.
	BackendRaw json.RawMessage `json:"backend,omitempty" caddy:"namespace=http.handlers.webrtc_signaling.hubs inline_key=module"`
	// Credentials, when set, adds fresh TURN credentials (iceServers) to
	// every welcome frame.
	Credentials *turncreds.Config `json:"credentials,omitempty"`
	// TokenSecrets, when set, makes every peer present a room token (a JWT
	// signed with HS256 under one of them) as the token query parameter.
	// Placeholders such as {env.ROOM_TOKEN_SECRET} are resolved at load;
	// apps sign with the first, the others are accepted (rotation).
	TokenSecrets []string `json:"token_secrets,omitempty"`
	// User is a placeholder expression for the peer's user id (e.g.
	// {http.auth.user.id}), shown to the others; a token's sub wins.
	User string `json:"user,omitempty"`
	// Name is a placeholder expression for the peer's display name; a
	// token's name wins.
	Name string `json:"name,omitempty"`
	// Limits bound what one client may take.
	Limits Limits `json:"limits,omitempty"`

	hub      Hub
	released bool
	origins  originPolicy
	tokens   *TokenVerifier
	metrics  *hubMetrics
	upgrader websocket.Upgrader
	logger   *zap.Logger
}

var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webrtc_signaling",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and attaches the handler to its hub.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.Room == "" {
		h.Room = DefaultRoom
	}
	if h.MaxPeers == 0 {
		h.MaxPeers = DefaultMaxPeers
	}
	if h.MaxMessageSize == 0 {
		h.MaxMessageSize = DefaultMaxMessageSize
	}
	if h.PingInterval == 0 {
		h.PingInterval = caddy.Duration(DefaultPingInterval)
	}
	if h.Hub == "" {
		h.Hub = DefaultHub
	}
	h.Limits = h.Limits.withDefaults()
	if len(h.TokenSecrets) > 0 {
		secrets, err := turncreds.ResolveSecrets(caddy.NewReplacer(), h.TokenSecrets)
		if err != nil {
			return fmt.Errorf("token_secret: %w", err)
		}
		keys := make([][]byte, len(secrets))
		for i, s := range secrets {
			keys[i] = []byte(s)
		}
		h.tokens = NewTokenVerifier(keys)
	}
	if err := registerSignalingMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	h.metrics = newHubMetrics(h.Hub)
	var err error
	if h.origins, err = parseOrigins(h.Origins); err != nil {
		return err
	}
	if h.Credentials != nil {
		if err := h.Credentials.Provision(ctx); err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
	}
	h.upgrader = newUpgrader()
	backendName, backend, err := h.loadBackend(ctx)
	if err != nil {
		return err
	}
	hub, err := loadHub(ctx, h.Hub, backendName, backend)
	if err != nil {
		return fmt.Errorf("loading signaling hub %q: %w", h.Hub, err)
	}
	h.hub = hub
	return nil
}

// loadBackend loads the backend guest module, memory when none is set.
func (h *Handler) loadBackend(ctx caddy.Context) (string, HubBackend, error) {
	if h.BackendRaw == nil {
		return memoryBackendName, MemoryBackend{}, nil
	}
	mod, err := ctx.LoadModule(h, "BackendRaw")
	if err != nil {
		return "", nil, fmt.Errorf("loading hub backend: %w", err)
	}
	backend, ok := mod.(HubBackend)
	if !ok {
		return "", nil, fmt.Errorf("module %T is not a hub backend", mod)
	}
	info := mod.(caddy.Module).CaddyModule()
	return info.ID.Name(), backend, nil
}

// Validate checks the options.
func (h *Handler) Validate() error {
	if h.MaxPeers < 1 {
		return fmt.Errorf("max_peers must be at least 1, got %d", h.MaxPeers)
	}
	if h.MaxMessageSize < 128 {
		return fmt.Errorf("max_message_size must be at least 128 bytes, got %d", h.MaxMessageSize)
	}
	if time.Duration(h.PingInterval) < 100*time.Millisecond {
		return fmt.Errorf("ping_interval must be at least 100ms, got %s", time.Duration(h.PingInterval))
	}
	if h.Credentials != nil {
		if err := h.Credentials.Validate(); err != nil {
			return fmt.Errorf("credentials: %w", err)
		}
	}
	return h.Limits.validate()
}

// Cleanup releases the hub; the pool shuts it down when no config uses it.
func (h *Handler) Cleanup() error {
	// Connections this handler started keep using h.hub after a reload, so
	// it stays set; only the pool reference is dropped, once.
	if h.hub == nil || h.released {
		return nil
	}
	h.released = true
	return releaseHub(h.Hub)
}

// ServeHTTP upgrades the request to a WebSocket and runs the peer's session.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if !websocket.IsWebSocketUpgrade(r) {
		if webclient.Serve(w, r) {
			return nil
		}
		// Upgrade is a connection-specific header, which HTTP/2 and 3
		// forbid: Go's HTTP/2 server resets the stream if it is set.
		if r.ProtoMajor == 1 {
			w.Header().Set("Upgrade", "websocket")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUpgradeRequired)
		_, _ = fmt.Fprintln(w, "This is a WebRTC signaling endpoint: connect with a WebSocket, e.g. new WebSocket(\"wss://<host><path>?room=<name>\").")
		return nil
	}
	release, ok := connsPerIP.acquire(h.Hub+"\x00"+clientIP(r), h.Limits.ConnectionsPerIP)
	if !ok {
		h.metrics.refused(tooManyConnections)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = fmt.Fprintf(w, "too many signaling connections from your address (limit %d)\n", h.Limits.ConnectionsPerIP)
		return nil
	}
	// Caddy's ResponseWriter wrappers do not all expose Hijack; reach it
	// through the ResponseController, which follows Unwrap.
	ws, err := h.upgrader.Upgrade(hijackable{w}, r, nil)
	if err != nil {
		release()
		// The upgrader has already written an HTTP error response.
		h.logger.Debug("websocket upgrade failed", zap.Error(err))
		return nil
	}
	s := h.open(ws, r)
	if s == nil {
		release()
		_ = ws.Close()
		return nil
	}
	// The session outlives the request on a goroutine of its own, so that
	// an idle peer does not keep the request's goroutine, parked under
	// Caddy's middleware stack with its grown stack, nor what that
	// goroutine holds (net/http's connection buffers, the request).
	go func() {
		// Hijacked connections are ours to close; Caddy's shutdown does not.
		defer ws.Close()
		defer release()
		s.run()
	}()
	return nil
}

// open admits the peer and puts it in its room; it returns the session to
// run, or nil when the peer was refused (and told why).
func (h *Handler) open(ws *websocket.Conn, r *http.Request) *session {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		repl = caddy.NewReplacer()
	}
	roomName := repl.ReplaceAll(h.Room, "")
	peer := newWSPeer(newPeerID(), ws, h.metrics)
	info, refusal := h.admit(r, repl, roomName)
	if refusal.code != "" {
		h.logger.Debug("refused peer", zap.String("code", refusal.code), zap.String("reason", refusal.reason), zap.String("remote", r.RemoteAddr))
		h.refuse(peer, refusal)
		return nil
	}
	if !h.join(peer, roomName, info, r) {
		return nil
	}
	h.metrics.joins.Inc()
	h.logger.Debug("peer joined", zap.String("room", roomName), zap.String("peer", peer.id), zap.String("user", info.User))
	s := &session{
		peer:    peer,
		hub:     h.hub,
		room:    roomName,
		maxSize: h.MaxMessageSize,
		idle:    2 * time.Duration(h.PingInterval),
		rate:    newFrameRate(h.Limits),
		metrics: h.metrics,
		logger:  h.logger,
	}
	// Leave runs on the writer goroutine as soon as the peer starts closing
	// (a slow peer is gone for the others at once), or after the read loop.
	s.leave = sync.OnceFunc(func() { h.hub.Leave(roomName, peer.id) })
	s.writerDone = h.startWriter(peer, s.leave)
	return s
}

// join puts the peer in its room, taking over the seat of its own session's
// stale connection when the request presents that session's token. It
// refuses the peer and returns false when it cannot join.
func (h *Handler) join(peer *wsPeer, roomName string, info PeerInfo, r *http.Request) bool {
	req := JoinRequest{
		Info:          info,
		MaxPeers:      h.MaxPeers,
		MaxRooms:      h.Limits.MaxRooms,
		MaxPeersTotal: h.Limits.MaxPeersTotal,
		Welcome:       h.welcomeBuilder(peer, roomName, info.User, r),
	}
	if token := r.URL.Query().Get("resume"); token != "" {
		req.Replace, _ = sessionTokenPeer(token, h.Hub, roomName)
	}
	replaced, err := h.hub.Join(roomName, peer, req)
	for errors.Is(err, ErrDuplicateID) { // practically impossible with 128-bit ids
		peer.id = newPeerID()
		replaced, err = h.hub.Join(roomName, peer, req)
	}
	switch {
	case errors.Is(err, ErrRoomFull):
		h.refuse(peer, refusal{CodeRoomFull, fmt.Sprintf("room is full (%d peers)", h.MaxPeers), CloseRoomFull})
		return false
	case errors.Is(err, ErrHubFull):
		h.refuse(peer, refusal{CodeUnavailable, "the server holds as many rooms or peers as it may", CloseGoingAway})
		return false
	case err != nil:
		h.logger.Error("joining room", zap.String("room", roomName), zap.Error(err))
		h.refuse(peer, refusal{CodeUnavailable, "signaling is shutting down", CloseGoingAway})
		return false
	}
	if replaced != nil {
		h.logger.Debug("peer took over its session's seat", zap.String("room", roomName), zap.String("replaced", replaced.ID()))
		evict(replaced, CodeReplaced, "a newer connection of this session took its place", CloseReplaced)
	}
	return true
}

// startWriter lets the peer's writer run; the channel closes when the
// close frame is out.
func (h *Handler) startWriter(p *wsPeer, onClose func()) <-chan struct{} {
	return p.start(time.Duration(h.PingInterval), onClose)
}

// refusal is why a peer may not join: an error code, a message for people,
// and the close code. The zero value admits.
type refusal struct {
	code, reason string
	closeCode    int
}

// refuse sends a fatal error frame and a close frame to a peer that did not
// join, then reads until the peer answers the close, so it sees both.
func (h *Handler) refuse(p *wsPeer, why refusal) {
	h.metrics.refused(why.code)
	// Bounds the wait should the close frame never go out; finish() then
	// shortens it to closeGrace.
	_ = p.ws.SetReadDeadline(time.Now().Add(writeWait + closeGrace))
	writerDone := h.startWriter(p, func() {})
	p.Send(errorFrame(why.code, why.reason))
	p.closeAfterQueued(why.closeCode, why.code)
	p.drainReads()
	<-writerDone
}

// admit checks the origin, room and token before joining, and says who the
// peer is.
func (h *Handler) admit(r *http.Request, repl *caddy.Replacer, room string) (PeerInfo, refusal) {
	if !h.origins.allowed(r) {
		return PeerInfo{}, refusal{CodeForbiddenOrigin, "origin " + quote(r.Header.Get("Origin")) + " may not connect", CloseForbiddenOrigin}
	}
	if room == "" {
		return PeerInfo{}, refusal{CodeMissingRoom, "no room given (e.g. ?room=<name>)", CloseMissingRoom}
	}
	if !validName(room, maxRoomLen) {
		return PeerInfo{}, refusal{CodeInvalidRoom, fmt.Sprintf("room name must be at most %d bytes of printable UTF-8", maxRoomLen), CloseMissingRoom}
	}
	if h.tokens != nil {
		claims, err := h.tokens.Verify(r.URL.Query().Get("token"), room, time.Now())
		if err != nil {
			h.metrics.tokenRefused(TokenReason(err))
			// err never contains the token.
			return PeerInfo{}, refusal{CodeUnauthorized, "room token refused: " + err.Error(), CloseUnauthorized}
		}
		return PeerInfo{User: identity(claims.Subject), Name: identity(claims.Name)}, refusal{}
	}
	return PeerInfo{User: identity(repl.ReplaceAll(h.User, "")), Name: identity(repl.ReplaceAll(h.Name, ""))}, refusal{}
}

// maxIdentityLen bounds user ids and display names shown to other peers.
const maxIdentityLen = 256

// identity returns a user id or name fit to show to others: printable,
// and bounded, or empty.
func identity(s string) string {
	if !validName(s, maxIdentityLen) {
		return ""
	}
	return s
}

// welcomeBuilder returns the function that renders the welcome frame.
func (h *Handler) welcomeBuilder(p *wsPeer, room, user string, r *http.Request) func([]PeerInfo) []byte {
	var ice []turncreds.ICEServer
	if h.Credentials != nil {
		ice = h.Credentials.IssueFor(r, time.Now(), user).ICEServers
	}
	return func(members []PeerInfo) []byte {
		return encode(Welcome{
			Type: TypeWelcome, ID: p.id, Room: room, Peers: members, ICEServers: ice,
			Resume: sessionToken(h.Hub, room, p.id),
		})
	}
}

// newUpgrader returns the WebSocket upgrader every handler uses.
func newUpgrader() websocket.Upgrader {
	return websocket.Upgrader{
		// Origins are checked after the upgrade so that browsers, which
		// cannot read a refused handshake's status, get a forbidden_origin
		// frame.
		CheckOrigin: func(*http.Request) bool { return true },
		// A small reader of our own on the raw connection rather than the
		// hijacked one (size 0): that 4 KiB reader reads through net/http's
		// connReader, which keeps net/http's whole connection, its 4 KiB
		// write buffer included, alive. 1 KiB still takes several small
		// frames per read; larger payloads bypass it into the read buffer.
		ReadBufferSize: 1024,
		// Frames are written through a pooled 4 KiB buffer that goes back
		// to the pool after each message, so idle peers hold none.
		WriteBufferSize: 4096,
		WriteBufferPool: writeBufferPool,
	}
}

// writeBufferPool shares write buffers among all connections.
var writeBufferPool websocket.BufferPool = &sync.Pool{}

// clientIP is the client's address as Caddy determines it: the connection's
// peer, or what trusted proxies say it is.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// validName reports whether s is at most max bytes of printable UTF-8.
func validName(s string, max int) bool {
	return len(s) <= max && utf8.ValidString(s) && !containsControl(s)
}

func containsControl(s string) bool {
	for _, c := range s {
		if unicode.IsControl(c) {
			return true
		}
	}
	return false
}

// newPeerID returns 128 random bits, URL-safe: unguessable, so a peer id
// can double as a capability to address that peer.
func newPeerID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}
