package signaling

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    Handler
		wantErr string
	}{
		{name: "bare", input: `webrtc_signaling`, want: Handler{}},
		{name: "all options", input: `webrtc_signaling {
			room {http.request.uri.query.r}
			max_peers 4
			max_message_size 16KiB
			ping_interval 10s
			origins https://a.test https://b.test
			hub calls
		}`, want: Handler{
			Room: "{http.request.uri.query.r}", MaxPeers: 4, MaxMessageSize: 16 << 10,
			PingInterval: caddy.Duration(10 * time.Second), Origins: []string{"https://a.test", "https://b.test"}, Hub: "calls",
		}},
		{name: "positional arg", input: `webrtc_signaling /x`, wantErr: "wrong argument count"},
		{name: "unknown", input: "webrtc_signaling {\n foo\n}", wantErr: `unknown webrtc_signaling option "foo"`},
		{name: "max_peers zero", input: "webrtc_signaling {\n max_peers 0\n}", wantErr: "positive integer"},
		{name: "max_peers two args", input: "webrtc_signaling {\n max_peers 1 2\n}", wantErr: "wrong argument count"},
		{name: "bad size", input: "webrtc_signaling {\n max_message_size big\n}", wantErr: "max_message_size"},
		{name: "bad duration", input: "webrtc_signaling {\n ping_interval soon\n}", wantErr: "ping_interval"},
		{name: "empty origins", input: "webrtc_signaling {\n origins\n}", wantErr: "wrong argument count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Room != tc.want.Room || h.MaxPeers != tc.want.MaxPeers || h.MaxMessageSize != tc.want.MaxMessageSize ||
				h.PingInterval != tc.want.PingInterval || strings.Join(h.Origins, " ") != strings.Join(tc.want.Origins, " ") || h.Hub != tc.want.Hub {
				t.Fatalf("got %+v, want %+v", h, tc.want)
			}
		})
	}
}

func TestUnmarshalCaddyfileCredentials(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`webrtc_signaling {
		max_peers 4
		credentials {
			secret s3cret
			uris turn:turn.test:3478
		}
		hub after
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if h.Credentials == nil || len(h.Credentials.Secrets) != 1 || len(h.Credentials.URIs) != 1 {
		t.Fatalf("credentials = %+v", h.Credentials)
	}
	if h.Hub != "after" || h.MaxPeers != 4 {
		t.Fatalf("options around the credentials block lost: %+v", h)
	}
}

func TestUnmarshalCaddyfileResumeWindow(t *testing.T) {
	for input, want := range map[string]string{
		"webrtc_signaling":                           "unset",
		"webrtc_signaling {\n resume_window 0\n}":    "0s",
		"webrtc_signaling {\n resume_window 1m\n}":   "1m0s",
		"webrtc_signaling {\n resume_window soon\n}": "error",
	} {
		var h Handler
		got := "unset"
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
			got = "error"
		} else if h.ResumeWindow != nil {
			got = time.Duration(*h.ResumeWindow).String()
		}
		if got != want {
			t.Errorf("%q: %s, want %s", input, got, want)
		}
	}
	neg := caddy.Duration(-time.Second)
	h := Handler{ResumeWindow: &neg, MaxPeers: 1, MaxMessageSize: 1024, PingInterval: caddy.Duration(time.Second)}
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "resume_window") {
		t.Fatalf("negative window: %v", err)
	}
}
