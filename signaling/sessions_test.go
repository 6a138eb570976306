package signaling

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// heldTransport takes no frames, as a peer that reads nothing.
type heldTransport struct{}

func newHeldTransport() *heldTransport { return &heldTransport{} }

func (*heldTransport) Wake()                   {}
func (*heldTransport) Send()                   {}
func (*heldTransport) Displace()               {}
func (*heldTransport) Close(int, string, bool) {}

// sessionHandler is a handler with a memory hub, resume on, and at most
// perIP connections per address.
func sessionHandler(perIP int) *Handler {
	window := caddy.Duration(time.Minute)
	h := &Handler{
		Hub:            "session-test",
		MaxMessageSize: DefaultMaxMessageSize,
		ResumeWindow:   &window,
		Limits:         Limits{ConnectionsPerIP: perIP}.withDefaults(),
		metrics:        newHubMetrics("session-test"),
		logger:         zap.NewNop(),
	}
	h.useHub(hub.NewMemoryHub(), newHubState(h.Hub))
	return h
}

// joined is a session of h in room, carried by t, member of the hub.
func joined(tb testing.TB, h *Handler, room, ip string, t session.Transport) *session.Session {
	tb.Helper()
	s := session.New(h.sessCfg, room, wire.PeerInfo{}, ip, t)
	if _, err := s.Join(hub.JoinRequest{Welcome: func([]wire.PeerInfo) []byte { return []byte(`{"type":"welcome"}`) }}); err != nil {
		tb.Fatal(err)
	}
	return s
}
