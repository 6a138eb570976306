package webclient_test

import (
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/signaling"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/webclient"
)

// TestFatalCodesMatchProtocol: the client gives up (no reconnect) exactly
// after the server's fatal errors of signaling/protocol.go; after 1001
// (going away) and 4408 (too slow) a reconnect can succeed.
func TestFatalCodesMatchProtocol(t *testing.T) {
	w := httptest.NewRecorder()
	webclient.Serve(w, httptest.NewRequest("GET", "/rtc/client.js", nil))
	js := w.Body.String()
	set := func(name string) []string {
		m := regexp.MustCompile(`const ` + name + ` = new Set\(\[([^\]]*)\]\)`).FindStringSubmatch(js)
		if m == nil {
			t.Fatalf("client.js has no %s set", name)
		}
		var out []string
		for _, v := range regexp.MustCompile(`"?([\w]+)"?`).FindAllStringSubmatch(m[1], -1) {
			out = append(out, v[1])
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		want []string
	}{
		{"FATAL_CLOSE", []string{
			strconv.Itoa(signaling.CloseMissingRoom),
			strconv.Itoa(signaling.CloseForbiddenOrigin),
			strconv.Itoa(signaling.CloseRoomFull),
			strconv.Itoa(signaling.CloseTooLarge),
		}},
		{"FATAL_CODES", []string{
			signaling.CodeRoomFull,
			signaling.CodeForbiddenOrigin,
			signaling.CodeMissingRoom,
			signaling.CodeInvalidRoom,
			signaling.CodeTooLarge,
		}},
	}
	for _, tc := range tests {
		slices.Sort(tc.want)
		if got := set(tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
}
