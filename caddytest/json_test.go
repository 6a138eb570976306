package caddytest

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// jsonConfig is the README's JSON example, on the test ports.
const jsonConfig = `{
  "admin": {"listen": "localhost:2999"},
  "logging": {"logs": {"default": {"level": "WARN"}}},
  "apps": {
    "http": {
      "servers": {
        "calls": {
          "listen": [":9080"],
          "automatic_https": {"disable": true},
          "routes": [
            {"match": [{"host": ["localhost"], "path": ["/rtc/app-credentials"]}],
             "handle": [{"handler": "turn_credentials"}]},
            {"match": [{"host": ["localhost"], "path": ["/rtc/credentials"]}],
             "handle": [{"handler": "turn_credentials", "secrets": ["json-secret"], "ttl": "1h",
                         "uris": ["turn:127.0.0.1:3478?transport=udp"], "stun": ["stun:127.0.0.1:3478"]}]},
            {"match": [{"host": ["localhost"], "path": ["/rtc/*"]}],
             "handle": [{"handler": "webrtc_signaling", "max_peers": 2, "max_message_size": 65536,
                         "ping_interval": "30s", "origins": ["https://example.com"],
                         "credentials": {"secrets": ["json-secret"], "uris": ["turn:127.0.0.1:3478"]}}]}
          ]
        }
      }
    },
    "turn": {
      "realm": "localhost",
      "secrets": ["json-turn-secret"],
      "listen": ["udp/127.0.0.1:14795"],
      "relay_address": "127.0.0.1",
      "max_lifetime": "12h"
    }
  }
}`

func TestJSONConfig(t *testing.T) {
	loadConfig(t, "application/json", jsonConfig, false)
	var ans iceAnswer
	if resp := getJSON(t, http.MethodGet, "http://localhost:9080/rtc/credentials", &ans); resp.StatusCode != 200 || len(ans.ICEServers) != 2 || ans.TTL != 3600 {
		t.Fatalf("credentials: %s %+v", resp.Status, ans)
	}
	// Credentials without secret or URIs take the turn app's.
	var app iceAnswer
	getJSON(t, http.MethodGet, "http://localhost:9080/rtc/app-credentials", &app)
	if len(app.ICEServers) != 2 || app.ICEServers[0].URLs[0] != "stun:127.0.0.1:14795" ||
		turncreds.Verify([]string{"json-turn-secret"}, app.ICEServers[1].Username, app.ICEServers[1].Credential, time.Now()) != nil {
		t.Fatalf("credentials from the turn app: %+v", app)
	}
	a := dial(t, roomURL+"json", "https://example.com")
	if w := a.expect("welcome"); len(w.ICEServers) != 1 || w.ICEServers[0].Username == "" {
		t.Fatalf("welcome %+v", w)
	}
	dial(t, roomURL+"json", "https://example.com").expect("welcome")
	c := dial(t, roomURL+"json", "https://example.com")
	c.expectError("room_full") // max_peers 2 from the JSON
	c.expectClose(4409)
	d := dial(t, roomURL+"json", "http://localhost:9080") // not in origins
	d.expectError("forbidden_origin")
}
