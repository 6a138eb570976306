package signaling

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfileWebhooks(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`webrtc_signaling {
		webhook https://a.test/hook {
			secret {env.HOOK_SECRET}
			events peer_joined peer_left
			timeout 3s
		}
		webhook http://b.test:8080/x {
			secret whsec_a2V5
		}
		hub after
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Webhooks) != 2 || h.Hub != "after" {
		t.Fatalf("got %+v", h)
	}
	a := h.Webhooks[0]
	if a.URL != "https://a.test/hook" || a.Secret != "{env.HOOK_SECRET}" || strings.Join(a.Events, " ") != "peer_joined peer_left" || a.Timeout != caddy.Duration(3e9) /* 3s */ {
		t.Fatalf("first webhook %+v", a)
	}
	for input, want := range map[string]string{
		"webrtc_signaling {\n webhook\n}":                               "wrong argument count",
		"webrtc_signaling {\n webhook http://x/ {\n events nope\n }\n}": `unknown webhook event "nope"`,
		"webrtc_signaling {\n webhook http://x/ {\n retries 3\n }\n}":   `unknown webhook option "retries"`,
		"webrtc_signaling {\n webhook http://x/ {\n timeout 0s\n }\n}":  "timeout",
		"webrtc_signaling {\n webhook http://x/ {\n secret a b\n }\n}":  "wrong argument count",
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", input, err, want)
		}
	}
}

func TestWebhookEndpoint(t *testing.T) {
	t.Setenv("WEBHOOK_TEST_SECRET", "s3cret")
	repl := caddy.NewReplacer()
	ep, err := Webhook{URL: "https://a.test/h?k=v", Secret: "{env.WEBHOOK_TEST_SECRET}"}.endpoint(repl)
	if err != nil || string(ep.Key) != "s3cret" {
		t.Fatalf("endpoint %+v, %v", ep, err)
	}
	if ep, err := (Webhook{URL: "https://a.test/", Secret: "whsec_a2V5"}).endpoint(repl); err != nil || string(ep.Key) != "key" {
		t.Fatalf("whsec_ secret: %q, %v", ep.Key, err)
	}
	for _, bad := range []Webhook{
		{URL: "a.test/h", Secret: "s"},
		{URL: "ftp://a.test/", Secret: "s"},
		{URL: "https://a.test/"},
		{URL: "https://a.test/", Secret: "{env.WEBHOOK_TEST_UNSET}"},
		{URL: "https://a.test/", Secret: "s", Events: []string{"room_opened"}},
	} {
		if _, err := bad.endpoint(repl); err == nil {
			t.Errorf("%+v accepted", bad)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error names the secret: %v", err)
		}
	}
}

func TestWebhooksJSON(t *testing.T) {
	var h Handler
	err := json.Unmarshal([]byte(`{"webhooks":[{"url":"https://a.test/h","secret":"s","events":["room_started"],"timeout":"2s"}]}`), &h)
	if err != nil || len(h.Webhooks) != 1 {
		t.Fatalf("%+v, %v", h, err)
	}
	if wh := h.Webhooks[0]; wh.URL != "https://a.test/h" || wh.Secret != "s" || wh.Events[0] != "room_started" || wh.Timeout != caddy.Duration(2e9) /* 2s */ {
		t.Fatalf("webhook %+v", wh)
	}
}
