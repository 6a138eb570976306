package signaling

import (
	"encoding/json"
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// The welcome's iceServers are issued as turncreds.ICEServer and sent as
// wire.ICEServer: the conversion keeps every member's bytes, which the
// compiler does not check of the tags.
func TestWelcomeICEServersUnchanged(t *testing.T) {
	issued := []turncreds.ICEServer{
		{URLs: []string{"stun:s:3478"}},
		{URLs: []string{"turn:t:3478?transport=udp", "turns:t:5349"}, Username: "1700000000:u", Credential: "c2VjcmV0"},
	}
	want, _ := json.Marshal(issued)
	got, _ := json.Marshal(wireICEServers(issued))
	if string(got) != string(want) {
		t.Fatalf("%s, want %s", got, want)
	}
}
