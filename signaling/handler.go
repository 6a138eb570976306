package signaling

import (
	"encoding/json"
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

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/sse"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/tunnel"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/webclient"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/webhook"
	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// Defaults of the handler's options.
const (
	DefaultRoom           = "{http.request.uri.query.room}"
	DefaultMaxPeers       = 6
	DefaultMaxMessageSize = 64 << 10
	DefaultPingInterval   = 30 * time.Second
	DefaultHub            = "default"
	DefaultResumeWindow   = 30 * time.Second
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
	// ResumeWindow is how long a peer whose connection was lost stays in
	// its room, its frames buffered, for the client to resume the session
	// on a new connection. Default 30s; 0 turns resume off.
	ResumeWindow *caddy.Duration `json:"resume_window,omitempty"`
	// Webhooks are endpoints the hub's room and peer events are POSTed
	// to (webhooks.go).
	Webhooks []Webhook `json:"webhooks,omitempty"`

	hub      hub.Hub
	state    *hubState       // what this process keeps for the hub
	sessCfg  *session.Config // shared by the handler's sessions
	released bool
	origins  originPolicy
	tokens   *TokenVerifier
	metrics  *hubMetrics
	logger   *zap.Logger
	// webhooks are the senders of Webhooks, from the pool under
	// webhookKeys.
	webhooks    []*webhook.Sender
	webhookKeys []string

	// streamsStop is closed when the server shuts down (or the handler is
	// cleaned up), and ends the SSE streams, which net/http would otherwise
	// wait for: their sessions go away, to resume on the next config.
	streamsStop chan struct{}
	endStreams  func()
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
	h.streamsStop = make(chan struct{})
	h.endStreams = sync.OnceFunc(func() { close(h.streamsStop) })
	if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok {
		srv.RegisterOnShutdown(h.endStreams)
	}
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
	if h.ResumeWindow == nil {
		d := caddy.Duration(DefaultResumeWindow)
		h.ResumeWindow = &d
	}
	if len(h.TokenSecrets) > 0 {
		var err error
		if h.tokens, err = newSecretVerifier(h.TokenSecrets); err != nil {
			return err
		}
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
	if err := h.provisionWebhooks(ctx); err != nil {
		return err
	}
	return h.openHub(ctx)
}

// openHub takes the handler's hub from the pool, opening it with its
// backend on first use, and has it hand this server's sessions the
// tunnels and posts other servers send them. It runs last in Provision:
// the sessions' config is built from the options as provisioned.
func (h *Handler) openHub(ctx caddy.Context) error {
	backendName, backend, err := h.loadBackend(ctx)
	if err != nil {
		return err
	}
	opened, state, err := loadHub(ctx, h.Hub, backendName, backend)
	if err != nil {
		return fmt.Errorf("loading signaling hub %q: %w", h.Hub, err)
	}
	h.useHub(opened, state)
	if t, ok := opened.(hub.Tunnels); ok {
		t.AcceptTunnels(tunnel.Accept(state.sessions))
	}
	if p, ok := opened.(hub.Posts); ok {
		p.AcceptPosts(sse.AcceptPost(state.sessions))
	}
	state.hooks.set(h, h.webhooks)
	if s, ok := opened.(hub.Sweeps); ok {
		s.WatchSweeps(sweepEvents(state.hooks.emit))
	}
	return nil
}

// useHub makes opened, whose state this process keeps in state, the hub
// the handler serves, and builds the config its sessions share from the
// options as provisioned.
func (h *Handler) useHub(opened hub.Hub, state *hubState) {
	h.hub, h.state = opened, state
	h.sessCfg = &session.Config{
		HubName:         h.Hub,
		Hub:             opened,
		Logger:          h.logger,
		Metrics:         h.metrics,
		MaxMessageSize:  h.MaxMessageSize,
		FramesPerSecond: h.Limits.FramesPerSecond,
		Burst:           h.Limits.Burst,
		ResumeWindow:    h.resumeWindow(),
		Sessions:        state.sessions,
		Away:            &state.away,
		AwayPerAddr:     h.Limits.ConnectionsPerIP,
		ResumedWelcome:  h.resumedWelcome,
		Events:          state.hooks.emit,
	}
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
	if h.ResumeWindow != nil && *h.ResumeWindow < 0 {
		return fmt.Errorf("resume_window must not be negative, got %s", time.Duration(*h.ResumeWindow))
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
	if h.endStreams != nil {
		h.endStreams()
	}
	if h.state != nil {
		h.state.hooks.drop(h)
	}
	h.releaseWebhooks()
	// Connections this handler started keep using h.hub after a reload, so
	// it stays set; only the pool reference is dropped, once.
	if h.hub == nil || h.released {
		return nil
	}
	h.released = true
	return releaseHub(h.Hub)
}

// ServeHTTP runs the peer's session over a WebSocket, or over the SSE
// fallback transport (<path>/events, <path>/send).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if !websocket.IsWebSocketUpgrade(r) {
		switch sseEndpoint(r) {
		case eventsSuffix:
			h.serveEvents(w, r)
			return nil
		case sendSuffix:
			h.serveSend(w, r)
			return nil
		}
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
	h.serveWebSocket(w, r)
	return nil
}

// resumeWindow is how long a lost peer may come back; 0 when resume is off.
func (h *Handler) resumeWindow() time.Duration {
	if h.ResumeWindow == nil {
		return 0
	}
	return time.Duration(*h.ResumeWindow)
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
