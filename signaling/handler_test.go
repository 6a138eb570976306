package signaling

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// validHandler is a handler as Provision leaves one with no options set.
func validHandler() Handler {
	return Handler{MaxPeers: DefaultMaxPeers, MaxMessageSize: DefaultMaxMessageSize, PingInterval: caddy.Duration(DefaultPingInterval), Limits: Limits{}.withDefaults()}
}

// Validate refuses options out of range, naming the option and the value.
func TestValidateNamesTheBadOption(t *testing.T) {
	if h := validHandler(); h.Validate() != nil {
		t.Fatalf("the defaults are refused: %v", h.Validate())
	}
	for _, tc := range []struct {
		name, want string
		mod        func(*Handler)
	}{
		{"max_peers", "max_peers must be at least 1, got 0", func(h *Handler) { h.MaxPeers = 0 }},
		{"max_message_size", "max_message_size must be at least 128 bytes, got 127", func(h *Handler) { h.MaxMessageSize = 127 }},
		{"ping_interval", "ping_interval must be at least 100ms, got 99ms", func(h *Handler) { h.PingInterval = caddy.Duration(99 * time.Millisecond) }},
		{"credentials", "credentials: no TURN secret", func(h *Handler) { h.Credentials = &turncreds.Config{} }},
		{"frames_per_second", "limits: frames_per_second must be positive, got -1", func(h *Handler) { h.Limits.FramesPerSecond = -1 }},
		{"connections_per_ip", "limits: connections_per_ip must be at least 1, got 0", func(h *Handler) { h.Limits.ConnectionsPerIP = 0 }},
		{"max_rooms", "limits: max_rooms and max_peers_total must be 0 (unlimited) or more", func(h *Handler) { h.Limits.MaxRooms = -1 }},
	} {
		h := validHandler()
		tc.mod(&h)
		if err := h.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// provision provisions h in a Caddy context of its own, cleaned up with
// the test.
func provision(t *testing.T, h *Handler) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(func() {
		_ = h.Cleanup()
		cancel()
	})
	return h.Provision(ctx)
}

// Provision refuses what it cannot load, saying what: an origin, a token
// secret, a hub backend.
func TestProvisionSaysWhatItCannotLoad(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		h          Handler
	}{
		{"origin", `origins: invalid origin "example.com": want scheme://host[:port]`, Handler{Origins: []string{"example.com"}}},
		{"token secret", "token_secret: secret 1 of 1 (\"{env.SIGNALING_TEST_UNSET}\") is empty after placeholder replacement",
			Handler{TokenSecrets: []string{"{env.SIGNALING_TEST_UNSET}"}}},
		{"backend", "loading hub backend", Handler{BackendRaw: json.RawMessage(`{"module":"no_such_backend"}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			h.Hub = "test:" + t.Name()
			if err := provision(t, &h); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
}

// Provision fills in the defaults, and the handler then validates and
// serves: a plain request is told this is a WebSocket endpoint (426).
func TestProvisionSetsTheDefaults(t *testing.T) {
	h := Handler{Hub: "test:" + t.Name()}
	if err := provision(t, &h); err != nil {
		t.Fatal(err)
	}
	if h.Room != DefaultRoom || h.MaxPeers != DefaultMaxPeers || h.MaxMessageSize != DefaultMaxMessageSize ||
		time.Duration(h.PingInterval) != DefaultPingInterval || h.resumeWindow() != DefaultResumeWindow || h.Limits != (Limits{}).withDefaults() {
		t.Fatalf("after Provision: %+v", h)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/signal?room=r", nil), nil); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusUpgradeRequired || rec.Header().Get("Upgrade") != "websocket" || !strings.Contains(rec.Body.String(), "connect with a WebSocket") {
		t.Fatalf("a plain request: %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
}
