package caddytest

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"

	"github.com/caddy-webrtc/caddy-webrtc/signaling"
	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// tokenSite requires room tokens, with a second secret being rotated out,
// and hands out TURN credentials in the welcome.
const tokenSite = `
http://localhost:9080 {
	handle /rtc/* {
		webrtc_signaling {
			token_secret {env.CADDYWEBRTC_TEST_TOKEN_SECRET} old-room-secret
			credentials {
				secret turn-secret
				uris turn:localhost:3478
			}
		}
	}
}
`

const tokenSecret = "room-secret-for-tests-0123456789"

func signed(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoomTokens(t *testing.T) {
	t.Setenv("CADDYWEBRTC_TEST_TOKEN_SECRET", tokenSecret)
	loadCaddyfile(t, tokenSite, true)
	before := scrapeMetrics(t)
	key := []byte(tokenSecret)
	exp := time.Now().Add(time.Hour).Unix()
	claims := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"room": "standup", "sub": "alice", "exp": exp}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	refused := []struct{ name, token, reason string }{
		{"missing", "", "missing"},
		{"malformed", "not.a.jwt", "malformed"},
		{"expired", signed(t, jwt.SigningMethodHS256, key, claims(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()})), "expired"},
		{"no exp", signed(t, jwt.SigningMethodHS256, key, claims(jwt.MapClaims{"exp": nil})), "malformed"},
		{"not yet valid", signed(t, jwt.SigningMethodHS256, key, claims(jwt.MapClaims{"nbf": time.Now().Add(time.Hour).Unix()})), "not_yet_valid"},
		{"wrong room", signed(t, jwt.SigningMethodHS256, key, claims(jwt.MapClaims{"room": "other"})), "wrong_room"},
		{"wrong secret", signed(t, jwt.SigningMethodHS256, []byte("guess"), claims(nil)), "bad_signature"},
		{"alg none", signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)), "bad_alg"},
		{"alg HS512", signed(t, jwt.SigningMethodHS512, key, claims(nil)), "bad_alg"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, roomURL+"standup&token="+url.QueryEscape(tc.token), "")
			f := c.expectError("unauthorized")
			if len(tc.token) > 20 && strings.Contains(f.Message, tc.token) {
				t.Fatal("the error frame repeats the token")
			}
			c.expectClose(4401)
		})
	}
	// A valid token, printed by `caddy webrtc-token`, and one signed with
	// the second (rotated-out) secret.
	good := mintWithCommand(t, "--secret", "{env.CADDYWEBRTC_TEST_TOKEN_SECRET}", "--room", "standup", "--sub", "alice", "--name", "Alice", "--ttl", "1h")
	alice, w := join(t, roomURL+"standup&token="+url.QueryEscape(good))
	if len(w.ICEServers) == 0 || !hasUser(w.ICEServers[len(w.ICEServers)-1].Username, "alice") {
		t.Fatalf("welcome iceServers %+v: want a TURN username for alice", w.ICEServers)
	}
	old := signed(t, jwt.SigningMethodHS256, []byte("old-room-secret"), claims(jwt.MapClaims{"sub": "bob", "name": "Bob"}))
	_, w = join(t, roomURL+"standup&token="+url.QueryEscape(old))
	if len(w.Peers) != 1 || w.Peers[0].User != "alice" || w.Peers[0].Name != "Alice" {
		t.Fatalf("bob's welcome lists %+v, want alice with her name", w.Peers)
	}
	if f := alice.expect("peer-joined"); f.User != "bob" || f.Name != "Bob" {
		t.Fatalf("peer-joined %+v, want bob with his name", f)
	}

	deltas := map[string]float64{
		`caddy_webrtc_signaling_refusals_total{code="unauthorized",hub="default"}`: float64(len(refused)),
	}
	for _, tc := range refused {
		deltas[`caddy_webrtc_signaling_token_failures_total{hub="default",reason="`+tc.reason+`"}`]++
	}
	expectMetrics(t, before, deltas, nil)
}

// Without tokens, the user and name options say who a peer is.
func TestIdentityFromPlaceholders(t *testing.T) {
	loadCaddyfile(t, `
http://localhost:9080 {
	handle /rtc/* {
		webrtc_signaling {
			user {http.request.uri.query.u}
			name {http.request.uri.query.n}
		}
	}
}
`, false)
	a, _ := join(t, roomURL+"ident&u=u1&n=Ann")
	_, w := join(t, roomURL+"ident&u=u2&n="+url.QueryEscape("B\x01ob"))
	if len(w.Peers) != 1 || w.Peers[0].User != "u1" || w.Peers[0].Name != "Ann" {
		t.Fatalf("welcome lists %+v", w.Peers)
	}
	// A name with control characters is not shown to others.
	if f := a.expect("peer-joined"); f.User != "u2" || f.Name != "" {
		t.Fatalf("peer-joined %+v", f)
	}
}

// mintWithCommand runs the registered `caddy webrtc-token` command, as
// Caddy's CLI does, and returns the token it prints.
func mintWithCommand(t testing.TB, args ...string) string {
	t.Helper()
	reg, ok := caddycmd.Commands()[signaling.TokenCommand]
	if !ok {
		t.Fatalf("command %q is not registered", signaling.TokenCommand)
	}
	cmd := &cobra.Command{Use: reg.Name, SilenceUsage: true}
	reg.CobraFunc(cmd)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("caddy %s: %v", reg.Name, err)
	}
	return strings.TrimSuffix(out.String(), "\n")
}

func hasUser(username, user string) bool {
	_, u, err := turncreds.ParseUsername(username)
	return err == nil && u == user
}
