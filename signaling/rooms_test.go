package signaling

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub/hubtest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

const roomsSecret = "rooms-api-secret-0123456789abcdef"

// roomsAPI returns a provisioned API on hub name, with token auth.
func roomsAPI(t *testing.T, name string) *RoomsAPI {
	t.Helper()
	a := &RoomsAPI{Hub: name, TokenSecrets: []string{roomsSecret}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	if err := a.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	a.logger = zap.NewNop()
	return a
}

// poolMemoryHub puts a memory hub named name in the pool, as a
// webrtc_signaling handler would, for the test's duration.
func poolMemoryHub(t *testing.T, name string) *hub.MemoryHub {
	t.Helper()
	h := hub.NewMemoryHub()
	if _, _, err := hubs.LoadOrNew(hubKey(name), func() (caddy.Destructor, error) {
		return pooledHub{Hub: h, backend: memoryBackendName, state: newHubState(name)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = releaseHub(name) })
	return h
}

func adminToken(t *testing.T, secret string, ttl time.Duration) string {
	t.Helper()
	tok, err := MintAdminToken([]byte(secret), "ops", ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call runs one request through the API and returns its status (from
// the answer or the error) and body.
func call(t *testing.T, a *RoomsAPI, method, path, token, body string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	err := a.ServeHTTP(w, r, nil)
	if err != nil {
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) {
			t.Fatalf("%s %s: %v is not a caddyhttp.HandlerError", method, path, err)
		}
		if he.Err == nil || he.Err.Error() == "" {
			t.Fatalf("%s %s: %d without a reason", method, path, he.StatusCode)
		}
		return he.StatusCode, he.Err.Error()
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s answered %s", method, path, ct)
	}
	return w.Code, w.Body.String()
}

func TestRoomsAPIValidate(t *testing.T) {
	for _, tc := range []struct {
		a  RoomsAPI
		ok bool
	}{
		{RoomsAPI{}, false},
		{RoomsAPI{Auth: "token"}, false},
		{RoomsAPI{Auth: RoomsAuthNone}, true},
		{RoomsAPI{TokenSecrets: []string{"s"}}, true},
		{RoomsAPI{TokenSecrets: []string{"s"}, Auth: RoomsAuthNone}, false},
	} {
		if err := tc.a.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v", tc.a, err)
		}
	}
}

func TestRoomsAPICaddyfile(t *testing.T) {
	var a RoomsAPI
	d := caddyfile.NewTestDispenser(`webrtc_rooms {
		hub calls
		token_secret one two
		auth none
	}`)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if a.Hub != "calls" || !slices.Equal(a.TokenSecrets, []string{"one", "two"}) || a.Auth != RoomsAuthNone {
		t.Fatalf("parsed %+v", a)
	}
	if err := new(RoomsAPI).UnmarshalCaddyfile(caddyfile.NewTestDispenser(`webrtc_rooms { bogus }`)); err == nil {
		t.Fatal("an unknown option was accepted")
	}
}

func TestRoomsPath(t *testing.T) {
	for path, want := range map[string][]string{
		"/rooms":                     {},
		"/rtc-api/rooms/":            {},
		"/rtc-api/rooms/standup":     {"standup"},
		"/a/b/rooms/a%2Fb/peers/x":   {"a/b", "peers", "x"},
		"/api/rooms/rooms/messages":  {"rooms", "messages"},
		"/api/rooms-x/rooms/r%20one": {"r one"},
	} {
		got, err := roomsPath(&url.URL{Path: mustUnescape(t, path), RawPath: path})
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %q, %v; want %q", path, got, err, want)
		}
	}
	for _, path := range []string{"/rtc-api/room", "/api/rooms//peers"} {
		if _, err := roomsPath(&url.URL{Path: path}); err == nil {
			t.Errorf("%s was accepted", path)
		}
	}
}

func mustUnescape(t *testing.T, p string) string {
	v, err := url.PathUnescape(p)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRoomsAPIAuth(t *testing.T) {
	poolMemoryHub(t, "rooms-auth")
	a := roomsAPI(t, "rooms-auth")
	roomTok, err := MintToken([]byte(roomsSecret), "standup", "alice", "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, err := MintAdminToken([]byte(roomsSecret), "", time.Minute, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what, token string
		status      int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a room token", roomTok, http.StatusForbidden},
		{"a wrong secret", adminToken(t, "another-secret-0123456789abcdef", time.Hour), http.StatusUnauthorized},
		{"an expired token", expired, http.StatusUnauthorized},
		{"garbage", "not.a.jwt", http.StatusUnauthorized},
		{"an admin token", adminToken(t, roomsSecret, time.Hour), http.StatusOK},
	} {
		if status, body := call(t, a, "GET", "/api/rooms", tc.token, ""); status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.what, status, body, tc.status)
		}
	}
	// Not a bearer token: as good as none.
	r := httptest.NewRequest("GET", "/api/rooms", nil)
	r.Header.Set("Authorization", "Basic "+adminToken(t, roomsSecret, time.Hour))
	w := httptest.NewRecorder()
	if err := a.ServeHTTP(w, r, nil); !isStatus(err, http.StatusUnauthorized) || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("basic auth: %v, %v", err, w.Header())
	}
	// auth none lets anyone in: the site protects the route itself.
	open := &RoomsAPI{Hub: "rooms-auth", Auth: RoomsAuthNone, logger: zap.NewNop()}
	if status, body := call(t, open, "GET", "/api/rooms", "", ""); status != http.StatusOK {
		t.Errorf("auth none: %d %s", status, body)
	}
}

func isStatus(err error, status int) bool {
	var he caddyhttp.HandlerError
	return errors.As(err, &he) && he.StatusCode == status
}

func TestRoomsAPIRoutes(t *testing.T) {
	h := poolMemoryHub(t, "rooms-routes")
	a := roomsAPI(t, "rooms-routes")
	tok := adminToken(t, roomsSecret, time.Hour)
	ps := map[string]*hubtest.Peer{}
	for _, id := range []string{"p2", "p1", "p3"} {
		ps[id] = hubtest.NewPeer(id)
		hubtest.Join(t, h, "standup", ps[id], 6)
	}
	ps["p2"].Expect(t, wire.TypePeerJoined, "p1")
	ps["p2"].Expect(t, wire.TypePeerJoined, "p3")
	ps["p1"].Expect(t, wire.TypePeerJoined, "p3")
	other := hubtest.NewPeer("q1")
	hubtest.Join(t, h, "a/b", other, 6)

	status, body := call(t, a, "GET", "/rtc-api/rooms", tok, "")
	var list struct {
		Rooms []struct {
			Room      string    `json:"room"`
			Peers     int       `json:"peers"`
			StartedAt time.Time `json:"started_at"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || status != 200 || len(list.Rooms) != 2 ||
		list.Rooms[0].Room != "a/b" || list.Rooms[0].Peers != 1 || list.Rooms[1].Room != "standup" || list.Rooms[1].Peers != 3 || list.Rooms[1].StartedAt.IsZero() {
		t.Fatalf("GET rooms: %d %s", status, body)
	}

	status, body = call(t, a, "GET", "/rtc-api/rooms/standup", tok, "")
	var members struct {
		Peers []memberJSON `json:"peers"`
	}
	if err := json.Unmarshal([]byte(body), &members); err != nil || status != 200 || len(members.Peers) != 3 {
		t.Fatalf("GET room: %d %s", status, body)
	}
	for i, id := range []string{"p2", "p1", "p3"} {
		if m := members.Peers[i]; m.ID != id || m.User != "u-"+id || m.Server != hub.LocalNode || m.JoinedAt.IsZero() {
			t.Fatalf("member %d: %+v", i, m)
		}
	}
	if status, body = call(t, a, "GET", "/rtc-api/rooms/a%2Fb", tok, ""); status != 200 || !strings.Contains(body, `"q1"`) {
		t.Fatalf("GET escaped room: %d %s", status, body)
	}

	// Messages: to all, then to one.
	if status, body = call(t, a, "POST", "/rtc-api/rooms/standup/messages", tok, `{"data":{"n":1}}`); status != 200 {
		t.Fatalf("POST messages: %d %s", status, body)
	}
	for _, p := range ps {
		if f := p.Next(t); f.Type != wire.TypeServerMessage || string(f.Data) != `{"n":1}` {
			t.Fatalf("got %+v", f)
		}
	}
	if status, body = call(t, a, "POST", "/rtc-api/rooms/standup/messages", tok, `{"data":"hi","to":["p1"]}`); status != 200 {
		t.Fatalf("POST messages to p1: %d %s", status, body)
	}
	if f := ps["p1"].Next(t); f.Type != wire.TypeServerMessage || string(f.Data) != `"hi"` {
		t.Fatalf("got %+v", f)
	}
	ps["p2"].Quiet(t)
	other.Quiet(t)

	// Removal and closing, as far as peers that are not sessions go: they
	// are closed with the codes.
	if status, body = call(t, a, "DELETE", "/rtc-api/rooms/standup/peers/p1", tok, ""); status != 200 || ps["p1"].ClosedWith() != wire.CloseRemoved {
		t.Fatalf("DELETE peer: %d %s, closed with %d", status, body, ps["p1"].ClosedWith())
	}
	if status, body = call(t, a, "DELETE", "/rtc-api/rooms/a%2Fb", tok, ""); status != 200 || other.ClosedWith() != wire.CloseRoomClosed {
		t.Fatalf("DELETE room: %d %s, closed with %d", status, body, other.ClosedWith())
	}

	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/rtc-api/rooms/nobody", "", 404},
		{"DELETE", "/rtc-api/rooms/nobody", "", 404},
		{"DELETE", "/rtc-api/rooms/standup/peers/nobody", "", 404},
		{"POST", "/rtc-api/rooms/nobody/messages", `{"data":1}`, 404},
		{"POST", "/rtc-api/rooms/standup/messages", `{"data":1,"to":["nobody"]}`, 404},
		{"POST", "/rtc-api/rooms/standup/messages", `{"to":["p2"]}`, 400},
		{"POST", "/rtc-api/rooms/standup/messages", `not json`, 400},
		{"POST", "/rtc-api/rooms/standup/messages", `{"data":"` + strings.Repeat("x", maxRoomsMessage) + `"}`, 413},
		{"POST", "/rtc-api/rooms", "", 405},
		{"PUT", "/rtc-api/rooms/standup", "", 405},
		{"GET", "/rtc-api/rooms/standup/messages", "", 405},
		{"GET", "/rtc-api/rooms/standup/other", "", 404},
		{"GET", "/rtc-api/elsewhere", "", 404},
	} {
		if status, body := call(t, a, tc.method, tc.path, tok, tc.body); status != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, status, body, tc.status)
		}
	}
	ps["p2"].Quiet(t)

	// A hub no handler opened.
	lost := roomsAPI(t, "rooms-nowhere")
	if status, body := call(t, lost, "GET", "/rooms", tok, ""); status != http.StatusServiceUnavailable {
		t.Errorf("unknown hub: %d %s", status, body)
	}
}

// plainHub is a hub without hub.Rooms, as a third-party backend's may be.
type plainHub struct{ hub.Hub }

func TestRoomsAPIWithoutRoomsSupport(t *testing.T) {
	if _, _, err := hubs.LoadOrNew(hubKey("rooms-plain"), func() (caddy.Destructor, error) {
		return pooledHub{Hub: plainHub{hub.NewMemoryHub()}, backend: "thirdparty", state: newHubState("rooms-plain")}, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = releaseHub("rooms-plain") })
	a := roomsAPI(t, "rooms-plain")
	status, reason := call(t, a, "GET", "/rooms", adminToken(t, roomsSecret, time.Hour), "")
	if status != http.StatusNotImplemented || !strings.Contains(reason, "thirdparty") {
		t.Fatalf("GET rooms: %d %s", status, reason)
	}
}
