package caddytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// signalingSite is a plain-HTTP site with the signaling route under /rtc/,
// next to other content, the way an existing app adds calls.
const signalingSite = `
http://localhost:9080 {
	handle /rtc/* {
		webrtc_signaling {
			max_message_size 4KiB
			# These tests relay floods on purpose: no frame rate limit.
			limits {
				frames_per_second 1000000
				burst 1000000
			}
			ping_interval 2s
			# Lost connections linger this long for a resume.
			resume_window 2s
		}
	}
	handle {
		respond "app home"
	}
}
`

const roomURL = "ws://localhost:9080/rtc/ws?room="

func TestRoomFlow(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	url := roomURL + "flow"

	a, wa := join(t, url)
	if wa.Room != "flow" || len(wa.Peers) != 0 || len(wa.ID) < 20 {
		t.Fatalf("first welcome = %+v, want room flow, no peers, a long id", wa)
	}
	b, wb := join(t, url)
	if len(wb.Peers) != 1 || wb.Peers[0].ID != a.id {
		t.Fatalf("second welcome peers = %+v, want [%s]", wb.Peers, a.id)
	}
	if b.id == a.id {
		t.Fatal("two peers got the same id")
	}
	if f := a.expect("peer-joined"); f.ID != b.id {
		t.Fatalf("peer-joined id %q, want %q", f.ID, b.id)
	}

	// Directed signals arrive unchanged, from the right sender, in order.
	const n = 200
	for i := range n {
		a.signal(b.id, map[string]any{"seq": i, "sdp": "v=0\r\n"})
	}
	for i := range n {
		f := b.expect("signal")
		var d struct {
			Seq int    `json:"seq"`
			SDP string `json:"sdp"`
		}
		if err := json.Unmarshal(f.Data, &d); err != nil || f.From != a.id || d.Seq != i || d.SDP != "v=0\r\n" {
			t.Fatalf("signal %d: from %q data %s (%v)", i, f.From, f.Data, err)
		}
	}
	b.signal(a.id, "answer")
	if f := a.expect("signal"); f.From != b.id || string(f.Data) != `"answer"` {
		t.Fatalf("answer: %+v", f)
	}

	// Broadcast reaches every other member, not the sender.
	c, wc := join(t, url)
	if len(wc.Peers) != 2 || wc.Peers[0].ID != a.id || wc.Peers[1].ID != b.id {
		t.Fatalf("third welcome peers = %+v, want [a b] in join order", wc.Peers)
	}
	a.expect("peer-joined")
	b.expect("peer-joined")
	c.send(map[string]any{"type": "broadcast", "data": map[string]string{"chat": "hi"}})
	for _, p := range []*wsClient{a, b} {
		if f := p.expect("broadcast"); f.From != c.id || string(f.Data) != `{"chat":"hi"}` {
			t.Fatalf("broadcast: %+v", f)
		}
	}
	c.roundTrip() // the sender got no copy of its broadcast

	// Leaving is announced to those who stay.
	b.leave()
	for _, p := range []*wsClient{a, c} {
		if f := p.expect("peer-left"); f.ID != b.id {
			t.Fatalf("peer-left id %q, want %q", f.ID, b.id)
		}
	}
	// Rooms are separate.
	d, wd := join(t, roomURL+"other")
	if len(wd.Peers) != 0 {
		t.Fatalf("other room welcome peers = %+v, want none", wd.Peers)
	}
	d.signal(a.id, "x")
	d.expectError("unknown_peer")
	a.roundTrip()
}

func TestRoomFull(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	url := roomURL + "full"
	var members []*wsClient
	for i := range 6 {
		c, w := join(t, url)
		if len(w.Peers) != i {
			t.Fatalf("peer %d welcome lists %d peers", i, len(w.Peers))
		}
		for _, m := range members {
			m.expect("peer-joined")
		}
		members = append(members, c)
	}
	seventh := dial(t, url, "")
	seventh.expectError("room_full")
	seventh.expectClose(4409)
	// Nobody in the room noticed: the next frame each gets is its own pong.
	for _, m := range members {
		m.roundTrip()
	}
	// A free seat is taken again.
	members[0].leave()
	for _, m := range members[1:] {
		m.expect("peer-left")
	}
	if _, w := join(t, url); len(w.Peers) != 5 {
		t.Fatalf("rejoin welcome lists %d peers, want 5", len(w.Peers))
	}
}

func TestBadInput(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	tests := []struct {
		name   string
		frame  []byte
		binary bool
		code   string
		close  int // 0: the connection stays open
	}{
		{name: "not json", frame: []byte("hello"), code: "bad_message"},
		{name: "json array", frame: []byte("[1,2]"), code: "bad_message"},
		{name: "no type", frame: []byte(`{"to":"x"}`), code: "bad_message"},
		{name: "unknown type", frame: []byte(`{"type":"offer"}`), code: "bad_message"},
		{name: "signal without to", frame: []byte(`{"type":"signal","data":1}`), code: "bad_message"},
		{name: "signal without data", frame: []byte(`{"type":"signal","to":"PEER"}`), code: "bad_message"},
		{name: "to not a string", frame: []byte(`{"type":"signal","to":5,"data":1}`), code: "bad_message"},
		{name: "broadcast without data", frame: []byte(`{"type":"broadcast"}`), code: "bad_message"},
		{name: "binary frame", frame: []byte{1, 2, 3}, binary: true, code: "bad_message"},
		// Relayed, invalid UTF-8 would make browsers drop the connection.
		{name: "invalid utf-8 in a signal", frame: []byte("{\"type\":\"signal\",\"to\":\"PEER\",\"data\":\"\xff\xfe\"}"), code: "bad_message"},
		{name: "invalid utf-8 in a broadcast", frame: []byte("{\"type\":\"broadcast\",\"data\":{\"sdp\":\"a\xc3\"}}"), code: "bad_message"},
		{name: "invalid utf-8 outside strings", frame: []byte("{\"type\":\"ping\"}\xff"), code: "bad_message"},
		{name: "unknown peer", frame: []byte(`{"type":"signal","to":"nobody","data":1}`), code: "unknown_peer"},
		{name: "too large", frame: []byte(`{"type":"broadcast","data":"` + strings.Repeat("x", 5000) + `"}`), code: "too_large", close: 4413},
		{name: "too large binary", frame: make([]byte, 5000), binary: true, code: "too_large", close: 4413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			room := roomURL + strings.ReplaceAll(tc.name, " ", "-")
			bystander, _ := join(t, room)
			bad, _ := join(t, room)
			bystander.expect("peer-joined")
			typ := websocket.TextMessage
			if tc.binary {
				typ = websocket.BinaryMessage
			}
			bad.sendRaw(typ, []byte(strings.ReplaceAll(string(tc.frame), "PEER", bystander.id)))
			bad.expectError(tc.code)
			if tc.close != 0 {
				bad.expectClose(tc.close)
				if f := bystander.expect("peer-left"); f.ID != bad.id {
					t.Fatalf("peer-left %q, want %q", f.ID, bad.id)
				}
			} else {
				// The sender is still in the room and can relay.
				bad.signal(bystander.id, "still here")
				if f := bystander.expect("signal"); f.From != bad.id {
					t.Fatalf("after error: %+v", f)
				}
			}
			bystander.roundTrip()
		})
	}
}

func TestRefusedAtAdmission(t *testing.T) {
	loadCaddyfile(t, signalingSite+`
http://127.0.0.1:9080 {
	webrtc_signaling {
		origins https://app.example
	}
}
`, false)
	tests := []struct {
		name, url, origin, code string
		close                   int
	}{
		{"missing room", "ws://localhost:9080/rtc/ws", "", "missing_room", 4400},
		{"empty room", roomURL, "", "missing_room", 4400},
		{"room too long", roomURL + strings.Repeat("r", 200), "", "invalid_room", 4400},
		{"control char in room", roomURL + "a%01b", "", "invalid_room", 4400},
		{"cross-site origin", roomURL + "o", "https://evil.example", "forbidden_origin", 4403},
		{"origin other port", roomURL + "o", "http://localhost:9999", "forbidden_origin", 4403},
		{"not in origins list", "ws://127.0.0.1:9080/?room=o", "http://127.0.0.1:9080", "forbidden_origin", 4403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, tc.url, tc.origin)
			c.expectError(tc.code)
			c.expectClose(tc.close)
		})
	}
	// Allowed origins get in.
	for _, ok := range []struct{ url, origin string }{
		{roomURL + "o", "http://localhost:9080"},
		{"ws://127.0.0.1:9080/?room=o", "https://app.example"},
		{"ws://127.0.0.1:9080/?room=o", "HTTPS://APP.EXAMPLE"},
	} {
		c := dial(t, ok.url, ok.origin)
		c.expect("welcome")
	}
}

func TestPlainGetAnswers426(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	resp, err := http.Get("http://localhost:9080/rtc/ws?room=x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUpgradeRequired || !strings.Contains(string(body), "WebSocket") {
		t.Fatalf("got %s %q, want 426 explaining the route", resp.Status, body)
	}
	// The rest of the site is untouched.
	resp2, err := http.Get("http://localhost:9080/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if b, _ := io.ReadAll(resp2.Body); string(b) != "app home" {
		t.Fatalf("site home = %q", b)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, directive, want string }{
		{"unknown option", "webrtc_signaling {\n\t\tbogus 1\n\t}", "unknown webrtc_signaling option"},
		{"bad max_peers", "webrtc_signaling {\n\t\tmax_peers zero\n\t}", "max_peers"},
		{"bad size", "webrtc_signaling {\n\t\tmax_message_size lots\n\t}", "max_message_size"},
		{"bad origin", "webrtc_signaling {\n\t\torigins example.com\n\t}", "invalid origin"},
		{"tiny ping", "webrtc_signaling {\n\t\tping_interval 1ms\n\t}", "ping_interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := loadConfigErr(t, "text/caddyfile", withGlobals("", fmt.Sprintf("http://localhost:9080 {\n\t%s\n}\n", tc.directive)))
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not mention %q", msg, tc.want)
			}
		})
	}
}

func TestServesBrowserClient(t *testing.T) {
	loadCaddyfile(t, signalingSite, false)
	tests := []struct{ path, ctype, contains string }{
		{"/rtc/client.js", "text/javascript", "export class RoomClient"},
		{"/rtc/client.d.ts", "application/typescript", "export interface RoomClientOptions"},
	}
	for _, tc := range tests {
		resp, err := http.Get("http://localhost:9080" + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: %s %q, %d bytes", tc.path, resp.Status, resp.Header.Get("Content-Type"), len(body))
		}
	}
}
