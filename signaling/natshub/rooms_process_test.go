package natshub

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyproc"
)

// siteConf is a site of the two-server tests: signaling on the NATS at
// url under prefix, with the rooms API under /api/ when rooms is set (auth
// none: these tests are about the cluster, token checks are the signaling
// package's) and a webhook to hook when it is not empty.
func siteConf(url, prefix string, rooms bool, hook string) func(port int) string {
	var api, webhook string
	if rooms {
		api = "\thandle /api/* {\n\t\twebrtc_rooms {\n\t\t\tauth none\n\t\t}\n\t}\n"
	}
	if hook != "" {
		webhook = fmt.Sprintf("\t\twebhook %s {\n\t\t\tsecret whsec_c2VjcmV0\n\t\t}\n", hook)
	}
	return func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bind 127.0.0.1
%s	webrtc_signaling /ws* {
		backend nats {
			url %s
			prefix %s
			node_timeout %s
		}
%s	}
}
`, port, api, url, prefix, testNodeTimeout, webhook)
	}
}

// roomsCall makes a rooms API request to p and decodes its JSON answer.
func roomsCall(t *testing.T, p *caddyproc.Proc, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.Addr()+"/api"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// expectClose reads until the connection closes, which must be with code.
func (cl *client) expectClose(code int) {
	cl.t.Helper()
	_ = cl.c.SetReadDeadline(time.Now().Add(readWait))
	for {
		if _, _, err := cl.c.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, code) {
				cl.t.Fatalf("%s: %v, want close %d", cl.id, err, code)
			}
			return
		}
	}
}

// The rooms API on two Caddy processes of one NATS: each lists the room
// spanning both, with the server holding each member; one messages and
// removes a peer the other holds, and the other closes the room for the
// members on both.
func TestRoomsAPIAcrossTwoCaddies(t *testing.T) {
	srv := startNATS(t)
	conf := siteConf(srv.URL(), fmt.Sprint("api", prefixes.Add(1)), true, "")
	a, b := caddyproc.Start(t, conf), caddyproc.Start(t, conf)
	x := join(t, a, "span")
	yc, err := dialRaw(t, b, "span")
	if err != nil {
		t.Fatal(err)
	}
	yw := readSeq(t, yc)
	y := &client{t: t, c: yc, id: yw.ID}
	z := join(t, b, "span")
	x.expectFrom("peer-joined", y.id)
	x.expectFrom("peer-joined", z.id)
	y.expectFrom("peer-joined", z.id)

	for _, p := range []*caddyproc.Proc{a, b} {
		status, got := roomsCall(t, p, "GET", "/rooms", "")
		rooms, _ := got["rooms"].([]any)
		if status != http.StatusOK || len(rooms) != 1 || rooms[0].(map[string]any)["peers"] != 3.0 {
			t.Fatalf("GET /rooms on %s: %d %v", p.Addr(), status, got)
		}
		status, got = roomsCall(t, p, "GET", "/rooms/span", "")
		peers, _ := got["peers"].([]any)
		if status != http.StatusOK || len(peers) != 3 {
			t.Fatalf("GET /rooms/span on %s: %d %v", p.Addr(), status, got)
		}
		var servers []string
		for i, want := range []*client{x, y, z} {
			m := peers[i].(map[string]any)
			if m["id"] != want.id || m["transport"] != "websocket" || m["away"] != false {
				t.Fatalf("member %d on %s: %v, want %s connected by websocket", i, p.Addr(), m, want.id)
			}
			servers = append(servers, m["server"].(string))
		}
		if servers[0] == servers[1] || servers[1] != servers[2] {
			t.Fatalf("servers %v: want x's apart from y's and z's", servers)
		}
	}

	// A messages and removes y, which B holds.
	status, got := roomsCall(t, a, "POST", "/rooms/span/messages", fmt.Sprintf(`{"data":{"n":1},"to":[%q]}`, y.id))
	if status != http.StatusOK || fmt.Sprint(got["sent"]) != fmt.Sprintf("[%s]", y.id) {
		t.Fatalf("POST messages: %d %v", status, got)
	}
	if f := y.expect("server-message"); string(f.Data) != `{"n":1}` {
		t.Fatalf("y got data %s", f.Data)
	}
	if status, got := roomsCall(t, a, "DELETE", "/rooms/span/peers/"+y.id, ""); status != http.StatusOK {
		t.Fatalf("DELETE peer: %d %v", status, got)
	}
	if f := y.expect("error"); f.Code != "removed" {
		t.Fatalf("y got error %s, want removed", f.Code)
	}
	y.expectClose(4406)
	x.expectFrom("peer-left", y.id)
	z.expectFrom("peer-left", y.id)
	// y's resume token is dead, on the server that held it and on the other.
	for _, p := range []*caddyproc.Proc{a, b} {
		again, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("%s&resume=%s&last_seq=%d", wsURL(p, "span"), url.QueryEscape(yw.Resume), yw.Seq), nil)
		if err != nil {
			t.Fatal(err)
		}
		cl := &client{t: t, c: again, id: "y again"}
		if f := cl.expect("error"); f.Code != "resume_failed" {
			t.Fatalf("y's token on %s: error %s, want resume_failed", p.Addr(), f.Code)
		}
		if w := cl.expect("welcome"); w.ID == y.id {
			t.Fatalf("y's token on %s resumed its session", p.Addr())
		}
		cl.send(map[string]string{"type": "leave"}) // a fresh peer, gone at once
		for _, o := range []*client{x, z} {
			o.expect("peer-joined")
			o.expect("peer-left")
		}
	}

	// B closes the room: x on A and z on B end.
	status, got = roomsCall(t, b, "DELETE", "/rooms/span", "")
	if status != http.StatusOK || len(got["closed"].([]any)) != 2 {
		t.Fatalf("DELETE room: %d %v", status, got)
	}
	for _, cl := range []*client{x, z} {
		if f := cl.expect("error"); f.Code != "room_closed" {
			t.Fatalf("%s got error %s, want room_closed", cl.id, f.Code)
		}
		cl.expectClose(4404)
	}
	for _, p := range []*caddyproc.Proc{a, b} {
		if status, got := roomsCall(t, p, "GET", "/rooms/span", ""); status != http.StatusNotFound {
			t.Fatalf("GET the closed room on %s: %d %v", p.Addr(), status, got)
		}
	}
}
