package turncreds

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

const testSecret = "handler-test-secret"

func newTestHandler(t *testing.T, c Config) *Handler {
	t.Helper()
	h := &Handler{Config: c}
	if err := h.Provision(provisionCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	h.logger = zap.NewNop() // the dev logger would only add noise
	return h
}

// serve runs h on a request carrying a Caddy replacer, as the http app
// provides, with userID (when set) as the authenticated user.
func serve(t *testing.T, h *Handler, method, target, userID string) *httptest.ResponseRecorder {
	t.Helper()
	w, err := serveErr(t, h, method, target, userID)
	if err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	return w
}

// serveErr is serve for requests the handler may refuse: it returns the
// handler's error, which Caddy turns into the answer.
func serveErr(t *testing.T, h *Handler, method, target, userID string) (*httptest.ResponseRecorder, error) {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	repl := caddy.NewReplacer()
	if userID != "" {
		repl.Set("http.auth.user.id", userID)
	}
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Error("turn_credentials must not call the next handler")
		return nil
	})
	return w, h.ServeHTTP(w, r, next)
}

func TestHandlerICEServers(t *testing.T) {
	h := newTestHandler(t, Config{
		Secrets: []string{testSecret, "older"},
		TTL:     caddy.Duration(time.Hour),
		User:    "{http.auth.user.id}",
		URIs:    []string{"turn:turn.example.com:3478", "turns:turn.example.com:5349?transport=tcp"},
		STUN:    []string{"stun:stun.example.com"},
	})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			before := time.Now()
			w := serve(t, h, method, "/turn", "alice")
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			checkHeaders(t, w)
			var got struct {
				ICEServers []ICEServer `json:"iceServers"`
				TTL        int64       `json:"ttl"`
				Expires    int64       `json:"expires"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %s: %v", w.Body, err)
			}
			if got.TTL != 3600 {
				t.Errorf("ttl = %d", got.TTL)
			}
			if want := before.Add(time.Hour).Unix(); got.Expires < want || got.Expires > want+2 {
				t.Errorf("expires = %d, want about %d", got.Expires, want)
			}
			if len(got.ICEServers) != 2 {
				t.Fatalf("iceServers = %+v", got.ICEServers)
			}
			if stun := got.ICEServers[0]; !reflect.DeepEqual(stun, ICEServer{URLs: []string{"stun:stun.example.com"}}) {
				t.Errorf("stun entry = %+v", stun)
			}
			turn := got.ICEServers[1]
			if !reflect.DeepEqual(turn.URLs, []string{"turn:turn.example.com:3478", "turns:turn.example.com:5349?transport=tcp"}) {
				t.Errorf("turn urls = %q", turn.URLs)
			}
			expiry, user, err := ParseUsername(turn.Username)
			if err != nil || user != "alice" || expiry.Unix() != got.Expires {
				t.Errorf("username %q -> %v, %q, %v", turn.Username, expiry, user, err)
			}
			if err := Verify([]string{testSecret}, turn.Username, turn.Credential, time.Now()); err != nil {
				t.Errorf("credential does not verify: %v", err)
			}
		})
	}
}

func TestHandlerUser(t *testing.T) {
	tests := []struct {
		name, expr, userID string
		want               func(string) bool
	}{
		{"from auth placeholder", "{http.auth.user.id}", "alice", func(u string) bool { return u == "alice" }},
		{"user may contain colons", "{http.auth.user.id}", "org:alice", func(u string) bool { return u == "org:alice" }},
		{"literal prefix", "room-{http.auth.user.id}", "bob", func(u string) bool { return u == "room-bob" }},
		{"anonymous gets a random id", "{http.auth.user.id}", "", isRandomID},
		{"no expression gets a random id", "", "alice", isRandomID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, Config{Secrets: []string{testSecret}, User: tt.expr, URIs: []string{"turn:a.example"}})
			w := serve(t, h, http.MethodGet, "/", tt.userID)
			var got struct {
				ICEServers []ICEServer `json:"iceServers"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.ICEServers) != 1 {
				t.Fatalf("body %s: %v", w.Body, err)
			}
			_, user, err := ParseUsername(got.ICEServers[0].Username)
			if err != nil || !tt.want(user) {
				t.Errorf("user part = %q (%v)", user, err)
			}
		})
	}
}

// isRandomID recognizes rand.Text output: 26 base32 characters.
func isRandomID(u string) bool {
	return len(u) == 26 && strings.Trim(u, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == ""
}

func TestHandlerTURNRESTShape(t *testing.T) {
	h := newTestHandler(t, Config{
		Secrets: []string{testSecret},
		TTL:     caddy.Duration(10 * time.Minute),
		User:    "{http.auth.user.id}",
		URIs:    []string{"turn:turn.example.com"},
		STUN:    []string{"stun:stun.example.com"},
	})
	w := serve(t, h, http.MethodGet, "/turn?service=turn&username=ignored", "carol")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	checkHeaders(t, w)
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got["ttl"] != float64(600) || !reflect.DeepEqual(got["uris"], []any{"turn:turn.example.com"}) {
		t.Errorf("body = %s", w.Body)
	}
	username, _ := got["username"].(string)
	password, _ := got["password"].(string)
	if _, user, _ := ParseUsername(username); user != "carol" {
		t.Errorf("username = %q", username)
	}
	if err := Verify([]string{testSecret}, username, password, time.Now()); err != nil {
		t.Errorf("credential does not verify: %v", err)
	}
}

func TestHandlerStatus(t *testing.T) {
	full := Config{Secrets: []string{testSecret}, URIs: []string{"turn:a.example"}, STUN: []string{"stun:a.example"}}
	stunOnly := Config{Secrets: []string{testSecret}, STUN: []string{"stun:a.example"}}
	tests := []struct {
		name     string
		cfg      Config
		method   string
		target   string
		code     int
		allow    string
		bodyHas  string // in the body of a 200, in the error of the others
		headOnly bool
	}{
		{name: "HEAD has headers, no body", cfg: full, method: http.MethodHead, target: "/", code: 200, headOnly: true},
		{name: "PUT", cfg: full, method: http.MethodPut, target: "/", code: 405, allow: "GET, HEAD, POST", bodyHas: "method not allowed"},
		{name: "DELETE", cfg: full, method: http.MethodDelete, target: "/", code: 405, allow: "GET, HEAD, POST", bodyHas: "method not allowed"},
		{name: "OPTIONS", cfg: full, method: http.MethodOptions, target: "/", code: 405, allow: "GET, HEAD, POST"},
		{name: "unknown service", cfg: full, method: http.MethodGet, target: "/?service=stun", code: 400, bodyHas: "unsupported service"},
		{name: "service=turn without TURN URIs", cfg: stunOnly, method: http.MethodGet, target: "/?service=turn", code: 503, bodyHas: "no TURN server"},
		{name: "stun only config", cfg: stunOnly, method: http.MethodGet, target: "/", code: 200, bodyHas: `{"iceServers":[{"urls":["stun:a.example"]}],`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := serveErr(t, newTestHandler(t, tt.cfg), tt.method, tt.target, "")
			if got := w.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if tt.code != http.StatusOK {
				checkHandlerError(t, w, err, tt.code, tt.bodyHas)
				return
			}
			if err != nil || w.Code != tt.code {
				t.Fatalf("status %d, error %v, want %d: %s", w.Code, err, tt.code, w.Body)
			}
			if !strings.Contains(w.Body.String(), tt.bodyHas) {
				t.Errorf("body %q lacks %q", w.Body, tt.bodyHas)
			}
			if tt.headOnly {
				checkHeaders(t, w)
				if w.Body.Len() != 0 {
					t.Errorf("HEAD body = %q", w.Body)
				}
			}
		})
	}
}

// checkHandlerError checks that a refusal is left to Caddy's error
// handling (and so to a site's handle_errors): returned as a HandlerError
// with the status, nothing written.
func checkHandlerError(t *testing.T, w *httptest.ResponseRecorder, err error, code int, msg string) {
	t.Helper()
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != code {
		t.Fatalf("error %v, want a caddyhttp.HandlerError with status %d", err, code)
	}
	if !strings.Contains(he.Err.Error(), msg) {
		t.Errorf("error %q lacks %q", he.Err, msg)
	}
	if w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
		t.Errorf("refusal wrote an answer itself: %q, Content-Type %q", w.Body, w.Header().Get("Content-Type"))
	}
}

func TestHandlerCaddyModule(t *testing.T) {
	info := Handler{}.CaddyModule()
	if info.ID != "http.handlers.turn_credentials" {
		t.Errorf("ID = %q", info.ID)
	}
	if _, ok := info.New().(*Handler); !ok {
		t.Errorf("New() = %T", info.New())
	}
}

func checkHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q", got)
	}
}

func TestUserPartIsBounded(t *testing.T) {
	for _, user := range []string{strings.Repeat("a", 1000), strings.Repeat("é", 300)} {
		got := truncateUTF8(user, maxUserLen)
		if len(got) > maxUserLen || !utf8.ValidString(got) || !strings.HasPrefix(user, got) {
			t.Fatalf("truncated to %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
		}
	}
}
