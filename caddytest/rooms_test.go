package caddytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// roomsSite has a signaling route with room tokens and the rooms API on
// the same hub, its admin tokens signed with the same secret.
const roomsSite = `
http://localhost:9080 {
	handle /rtc/* {
		webrtc_signaling {
			hub roomsapi
			token_secret {env.CADDYWEBRTC_TEST_ROOMS_SECRET}
			resume_window 1m
			ping_interval 2s
		}
	}
	handle /rtc-api/* {
		webrtc_rooms {
			hub roomsapi
			token_secret {env.CADDYWEBRTC_TEST_ROOMS_SECRET}
		}
	}
}
`

const (
	roomsSecret = "rooms-api-secret-for-tests-0123"
	roomsAPIURL = "http://localhost:9080/rtc-api/rooms"
)

// roomToken mints a room token for user in room.
func roomToken(t *testing.T, room, user string) string {
	t.Helper()
	tok, err := signaling.MintToken([]byte(roomsSecret), room, user, "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// roomsCall sends one request to the rooms API and returns its status and
// body.
func roomsCall(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, roomsAPIURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s answered %s", method, path, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, b
}

type apiMember struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	JoinedAt  time.Time `json:"joined_at"`
	Transport string    `json:"transport"`
	Away      bool      `json:"away"`
	Server    string    `json:"server"`
}

// roomMembers lists room's members through the API.
func roomMembers(t *testing.T, admin, room string) []apiMember {
	t.Helper()
	status, body := roomsCall(t, "GET", "/"+url.PathEscape(room), admin, "")
	if status != http.StatusOK {
		t.Fatalf("GET room %s: %d %s", room, status, body)
	}
	var v struct {
		Room  string      `json:"room"`
		Peers []apiMember `json:"peers"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Room != room {
		t.Fatalf("GET room %s: %s (%v)", room, body, err)
	}
	return v.Peers
}

// The rooms API on one server: rooms and members listed (WebSocket, SSE
// and away members), messages to all and to one, sequenced across a
// resume, a peer removed for good, a room closed for everyone.
func TestRoomsAPI(t *testing.T) {
	t.Setenv("CADDYWEBRTC_TEST_ROOMS_SECRET", roomsSecret)
	loadCaddyfile(t, roomsSite, true)
	admin := mintWithCommand(t, "--secret", roomsSecret, "--admin", "--sub", "ops")
	wsURL := func(user string) string {
		return "ws://localhost:9080/rtc/ws?room=standup&token=" + url.QueryEscape(roomToken(t, "standup", user))
	}

	a, _ := join(t, wsURL("alice"))
	b := newResumer(t, wsURL("bob"))
	a.expect("peer-joined")
	b.cut()
	eventually(t, 10*time.Second, "bob away", func() bool {
		ms := roomMembers(t, admin, "standup")
		return len(ms) == 2 && ms[1].Away
	})
	c, _ := joinSSE(t, sseBase, "room=standup&token="+url.QueryEscape(roomToken(t, "standup", "carol")))
	a.expect("peer-joined")

	status, body := roomsCall(t, "GET", "", admin, "")
	var list struct {
		Rooms []struct {
			Room      string    `json:"room"`
			Peers     int       `json:"peers"`
			StartedAt time.Time `json:"started_at"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal(body, &list); err != nil || status != 200 || len(list.Rooms) != 1 ||
		list.Rooms[0].Room != "standup" || list.Rooms[0].Peers != 3 || time.Since(list.Rooms[0].StartedAt) > time.Minute {
		t.Fatalf("GET rooms: %d %s", status, body)
	}
	ms := roomMembers(t, admin, "standup")
	want := []apiMember{
		{ID: a.id, User: "alice", Transport: "websocket", Server: "local"},
		{ID: b.id, User: "bob", Transport: "websocket", Away: true, Server: "local"},
		{ID: c.id, User: "carol", Transport: "sse", Server: "local"},
	}
	for i, m := range ms {
		joined := m.JoinedAt
		m.JoinedAt = time.Time{}
		if i >= len(want) || m != want[i] || joined.IsZero() || (i > 0 && joined.Before(ms[i-1].JoinedAt)) {
			t.Fatalf("members %+v, want %+v in join order", ms, want)
		}
	}

	// A message to all; the away member gets it on its resume, in
	// sequence, once.
	if status, body := roomsCall(t, "POST", "/standup/messages", admin, `{"data":{"text":"standup starts"}}`); status != 200 {
		t.Fatalf("POST messages: %d %s", status, body)
	}
	const all = `{"text":"standup starts"}`
	if f := a.expect(wire.TypeServerMessage); string(f.Data) != all {
		t.Fatalf("a got %s", f.Data)
	}
	if f := c.expect(wire.TypeServerMessage); string(f.Data) != all {
		t.Fatalf("c got %s", f.Data)
	}
	b.resume()
	if f := b.next(); f.Type != "peer-joined" || f.ID != c.id {
		t.Fatalf("b got %+v, want carol's peer-joined", f)
	}
	if f := b.next(); f.Type != wire.TypeServerMessage || string(f.Data) != all {
		t.Fatalf("b got %+v, want the message", f)
	}
	b.ping()
	if ms := roomMembers(t, admin, "standup"); ms[1].Away {
		t.Fatalf("bob is still away after his resume: %+v", ms[1])
	}

	// A message to one.
	if status, body := roomsCall(t, "POST", "/standup/messages", admin, `{"data":"just you","to":["`+c.id+`"]}`); status != 200 {
		t.Fatalf("POST messages to carol: %d %s", status, body)
	}
	if f := c.expect(wire.TypeServerMessage); string(f.Data) != `"just you"` {
		t.Fatalf("c got %s", f.Data)
	}
	a.roundTrip()
	b.ping()

	// Bob removed: the error, the close code, gone for the others, and
	// his resume token dead.
	if status, body := roomsCall(t, "DELETE", "/standup/peers/"+b.id, admin, ""); status != 200 {
		t.Fatalf("DELETE bob: %d %s", status, body)
	}
	b.c.expectError(wire.CodeRemoved)
	b.c.expectClose(wire.CloseRemoved)
	if f := a.expect("peer-left"); f.ID != b.id {
		t.Fatalf("a got %+v", f)
	}
	if f := c.expect("peer-left"); f.ID != b.id {
		t.Fatalf("c got %+v", f)
	}
	again := dial(t, b.resumeURL(b.token, b.lastSeq), "")
	again.expectError(wire.CodeResumeFailed)
	if w := again.expect("welcome"); w.Resumed || w.ID == b.id {
		t.Fatalf("bob's token resumed: %+v", w)
	}
	again.leave()
	a.expect("peer-joined")
	a.expect("peer-left")
	c.expect("peer-joined")
	c.expect("peer-left")
	if status, _ := roomsCall(t, "DELETE", "/standup/peers/"+b.id, admin, ""); status != http.StatusNotFound {
		t.Fatalf("DELETE bob again: %d", status)
	}

	// An away member, then the room closed: everyone ends, the away one
	// too (its token is dead), and the room is gone.
	d := newResumer(t, wsURL("dave"))
	a.expect("peer-joined")
	c.expect("peer-joined")
	d.cut()
	eventually(t, 10*time.Second, "dave away", func() bool {
		ms := roomMembers(t, admin, "standup")
		return len(ms) == 3 && ms[2].Away
	})
	if status, body := roomsCall(t, "DELETE", "/standup", admin, ""); status != 200 {
		t.Fatalf("DELETE room: %d %s", status, body)
	}
	a.expectError(wire.CodeRoomClosed)
	a.expectClose(wire.CloseRoomClosed)
	c.expectError(wire.CodeRoomClosed)
	c.expectEnd()
	if status, body := roomsCall(t, "GET", "/standup", admin, ""); status != http.StatusNotFound {
		t.Fatalf("GET closed room: %d %s", status, body)
	}
	if status, body := roomsCall(t, "DELETE", "/standup", admin, ""); status != http.StatusNotFound {
		t.Fatalf("DELETE closed room: %d %s", status, body)
	}
	late := dial(t, d.resumeURL(d.token, d.lastSeq), "")
	late.expectError(wire.CodeResumeFailed)
	late.expect("welcome")
	late.leave()
}

// Only admin tokens open the rooms API: no token, a room token, a wrong
// secret and an expired token are refused.
func TestRoomsAPIRefusals(t *testing.T) {
	t.Setenv("CADDYWEBRTC_TEST_ROOMS_SECRET", roomsSecret)
	loadCaddyfile(t, roomsSite, true)
	wrong, err := signaling.MintAdminToken([]byte("another-secret-0123456789abcdef"), "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, err := signaling.MintAdminToken([]byte(roomsSecret), "", time.Minute, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what, token string
		status      int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a room token", roomToken(t, "standup", "alice"), http.StatusForbidden},
		{"a wrong secret", wrong, http.StatusUnauthorized},
		{"an expired token", expired, http.StatusUnauthorized},
		{"an admin token", mintWithCommand(t, "--secret", roomsSecret, "--admin"), http.StatusOK},
	} {
		if status, body := roomsCall(t, "GET", "", tc.token, ""); status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.what, status, body, tc.status)
		}
	}
	// A rooms API with neither admin tokens nor auth none is refused.
	msg := loadConfigErr(t, "text/caddyfile", withGlobals("", `
http://localhost:9080 {
	handle /rtc-api/* {
		webrtc_rooms {
			hub roomsapi
		}
	}
}
`))
	if !strings.Contains(msg, "webrtc_rooms needs token_secret") {
		t.Fatalf("config without auth: %s", msg)
	}
}
