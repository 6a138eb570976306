package wire

import (
	"encoding/json"
	"testing"
)

// The frames the helpers build, byte for byte as package signaling built
// them before the wire moved here: clients and other servers of a cluster
// see these bytes, so any change to them is a protocol change.
func TestHelperFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"joined", Joined(PeerInfo{ID: "a", User: "u", Name: "Ann"}), `{"type":"peer-joined","id":"a","user":"u","name":"Ann"}`},
		{"joined, anonymous", Joined(PeerInfo{ID: "a"}), `{"type":"peer-joined","id":"a"}`},
		{"left", Left("a"), `{"type":"peer-left","id":"a"}`},
		{"error", Error(CodeRoomFull, "room is full"), `{"type":"error","code":"room_full","message":"room is full"}`},
		{"error, escaped", Error(CodeBadMessage, `a<b>&"c"`), `{"type":"error","code":"bad_message","message":"a\u003cb\u003e\u0026\"c\""}`},
		{"error, no message", Error(CodeReplaced, ""), `{"type":"error","code":"replaced","message":""}`},
		{"pong", Pong(), `{"type":"pong"}`},
		{"replaced", Replaced(), `{"type":"error","code":"replaced","message":"a newer connection of this session took its place"}`},
	} {
		if string(tc.got) != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}

// Pong is encoded once: a ping is answered without an allocation.
func TestPongShared(t *testing.T) {
	if a, b := Pong(), Pong(); &a[0] != &b[0] {
		t.Fatal("Pong built a new frame")
	}
	if n := testing.AllocsPerRun(10, func() { _ = Pong() }); n != 0 {
		t.Fatalf("Pong allocates %v times", n)
	}
}

// Each frame type decodes from its JSON and encodes back to the same
// bytes: the struct tags name every member, in the order clients see.
func TestFrameRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		json  string
		frame any
	}{
		{`{"type":"welcome","id":"a","room":"r","peers":[{"id":"b","user":"u","name":"Bo"}],` +
			`"iceServers":[{"urls":["stun:s"]},{"urls":["turn:t"],"username":"9:u","credential":"c"}],` +
			`"resume":"tok","resume_window":30,"resumed":true,"ack":7}`, &Welcome{}},
		{`{"type":"welcome","id":"a","room":"r","peers":[]}`, &Welcome{}},
		{`{"seq":3,"ack":2,"type":"signal","to":"b","data":{"sdp":"v=0"}}`, &Inbound{}},
		{`{"type":"leave"}`, &Inbound{}},
		{`{"type":"signal","from":"a","data":{"candidate":"x"}}`, &Outbound{}},
		{`{"type":"broadcast","from":"a","data":[1,2]}`, &Outbound{}},
		{`{"type":"error","code":"unknown_peer","message":"no peer \"b\" in this room"}`, &ErrorFrame{}},
	} {
		if err := json.Unmarshal([]byte(tc.json), tc.frame); err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		if got := Encode(tc.frame); string(got) != tc.json {
			t.Errorf("%T: %s, want %s", tc.frame, got, tc.json)
		}
	}
}

// A frame that does not marshal is a bug in the server, not an error to
// pass on: Encode panics.
func TestEncodePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Encode returned for a value that cannot marshal")
		}
	}()
	Encode(Outbound{Type: TypeSignal, Data: json.RawMessage("{")})
}
