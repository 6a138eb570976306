package signaling

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/internal/wstest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// A peer that may not wstest.Join is told why in an error frame, then closed
// with the code the protocol gives that reason; one that may, is welcome.
func TestRefusalsSayWhyAndCloseWithTheirCode(t *testing.T) {
	base, _ := testServer(t, func(h *Handler) {
		h.origins, _ = parseOrigins([]string{"https://good.test"})
		h.MaxPeers = 1
	})
	good := http.Header{"Origin": {"https://good.test"}}
	wstest.Join(t, base, "full") // with no Origin header: a client that is no browser
	for _, tc := range []struct {
		name, query string
		origin      string
		code        string
		close       int
	}{
		{"foreign origin", "room=r", "https://evil.test", wire.CodeForbiddenOrigin, wire.CloseForbiddenOrigin},
		{"no room", "", "https://good.test", wire.CodeMissingRoom, wire.CloseMissingRoom},
		{"empty room", "room=", "https://good.test", wire.CodeMissingRoom, wire.CloseMissingRoom},
		{"control character", "room=a%01b", "https://good.test", wire.CodeInvalidRoom, wire.CloseMissingRoom},
		{"room too long", "room=" + strings.Repeat("x", maxRoomLen+1), "https://good.test", wire.CodeInvalidRoom, wire.CloseMissingRoom},
		{"room full", "room=full", "https://good.test", wire.CodeRoomFull, wire.CloseRoomFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := wstest.Dial(t, base, tc.query, http.Header{"Origin": {tc.origin}})
			if f := wstest.NextFrame(t, ws); f.Type != wire.TypeError || f.Code != tc.code {
				t.Fatalf("first frame %+v, want error %s", f, tc.code)
			}
			if code := wstest.CloseCode(t, ws); code != tc.close {
				t.Fatalf("closed with %d, want %d", code, tc.close)
			}
		})
	}
	ws := wstest.Dial(t, base, "room="+strings.Repeat("x", maxRoomLen), good)
	if f := wstest.NextFrame(t, ws); f.Type != wire.TypeWelcome {
		t.Fatalf("a room name of %d bytes from an allowed origin: %+v, want a welcome", maxRoomLen, f)
	}
}

// With room tokens on, a peer without a valid token for the room is
// refused as unauthorized; a valid one joins under the token's identity.
func TestRoomTokensAreRequiredWhenConfigured(t *testing.T) {
	base, _ := testServer(t, func(h *Handler) { h.tokens = NewTokenVerifier([][]byte{tokSecret}) })
	valid := func(mod func(*TokenClaims)) string {
		return signTok(t, jwt.SigningMethodHS256, tokSecret, goodTokClaims(func(c *TokenClaims) {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
			if mod != nil {
				mod(c)
			}
		}))
	}
	for name, token := range map[string]string{
		"no token":      "",
		"garbage":       "x.y.z",
		"other room":    valid(func(c *TokenClaims) { c.Room = "other" }),
		"expired":       valid(func(c *TokenClaims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)) }),
		"foreign key":   signTok(t, jwt.SigningMethodHS256, tokOther, goodTokClaims(nil)),
		"unsigned kind": rawTok(`{"alg":"none","typ":"JWT"}`, tokValidPayload(), tokSecret),
	} {
		t.Run(name, func(t *testing.T) {
			ws := wstest.Dial(t, base, "room=standup&token="+url.QueryEscape(token), nil)
			if f := wstest.NextFrame(t, ws); f.Type != wire.TypeError || f.Code != wire.CodeUnauthorized {
				t.Fatalf("first frame %+v, want unauthorized", f)
			}
			if code := wstest.CloseCode(t, ws); code != wire.CloseUnauthorized {
				t.Fatalf("closed with %d, want %d", code, wire.CloseUnauthorized)
			}
		})
	}
	ws := wstest.Dial(t, base, "room=standup&token="+url.QueryEscape(valid(nil)), nil)
	if f := wstest.NextFrame(t, ws); f.Type != wire.TypeWelcome {
		t.Fatalf("a valid token: %+v, want a welcome", f)
	}
	other := wstest.Dial(t, base, "room=standup&token="+url.QueryEscape(valid(func(c *TokenClaims) { c.Subject, c.Name = "bob", "Bob" })), nil)
	wstest.NextFrame(t, other)
	var joined struct{ User, Name string }
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.ReadJSON(&joined); err != nil || joined.User != "bob" || joined.Name != "Bob" {
		t.Fatalf("peer-joined %+v (%v), want the token's user and name", joined, err)
	}
}

// An address holds at most connections_per_ip connections: the next is
// answered 429 before any upgrade, with the limit in its body; closing
// one lets another in.
func TestConnectionsPerIPAreCapped(t *testing.T) {
	base, _ := testServer(t, func(h *Handler) { h.Limits.ConnectionsPerIP = 2 })
	a, _ := wstest.Join(t, base, "cap")
	wstest.Join(t, base, "cap")
	_, resp, err := websocket.DefaultDialer.Dial(base+"?room=cap", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection: %v, %v; want 429", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "too many signaling connections from your address (limit 2)") {
		t.Fatalf("429 says %q", body)
	}
	a.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ws, resp, err := websocket.DefaultDialer.Dial(base+"?room=cap", nil)
		if err == nil {
			ws.Close()
			return
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after a connection closed: %v, %v; want one more let in", err, resp)
		}
		time.Sleep(10 * time.Millisecond) // polling the release of a's place
	}
}
