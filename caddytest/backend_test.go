package caddytest

import (
	"strings"
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// altMemory is a second, real backend (rooms in this process, like memory)
// so the tests can give one hub two different backends.
type altMemory struct{}

func (altMemory) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.webrtc_signaling.hubs.altmemory", New: func() caddy.Module { return new(altMemory) }}
}

func (altMemory) OpenHub(string) (hub.Hub, error) { return hub.NewMemoryHub(), nil }

func (*altMemory) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	return nil
}

func init() { caddy.RegisterModule(altMemory{}) }

// The backend is a guest module, chosen in the Caddyfile or JSON; the
// admin endpoint names it.
func TestHubBackendModule(t *testing.T) {
	loadCaddyfile(t, `
http://localhost:9080 {
	handle /rtc/* {
		webrtc_signaling {
			hub explicit
			backend memory
		}
	}
}
`, false)
	a, _ := join(t, roomURL+"b")
	join(t, roomURL+"b")
	a.expect("peer-joined")
	var stats struct {
		Hubs map[string]hub.HubStats `json:"hubs"`
	}
	adminJSON(t, "/webrtc/signaling", &stats)
	if h := stats.Hubs["explicit"]; h != (hub.HubStats{Backend: "memory", LocalPeers: 2, Rooms: 1, Peers: 2}) {
		t.Fatalf("admin stats %+v", stats.Hubs)
	}

	// The same in JSON.
	loadConfig(t, "application/json", `{"admin":{"listen":"`+adminAddr+`"},"apps":{"http":{"servers":{"s":{"listen":[":9080"],
		"routes":[{"handle":[{"handler":"webrtc_signaling","hub":"json","backend":{"module":"altmemory"}}]}]}}}}}`, false)
	join(t, "ws://localhost:9080/?room=j")
	adminJSON(t, "/webrtc/signaling", &stats)
	if h := stats.Hubs["json"]; h.Backend != "altmemory" || h.Peers != 1 {
		t.Fatalf("admin stats %+v", stats.Hubs)
	}
}

func TestHubBackendConflicts(t *testing.T) {
	for name, tc := range map[string]struct{ config, want string }{
		"two backends for one hub": {`
http://localhost:9080 {
	handle /a/* {
		webrtc_signaling {
			hub shared
		}
	}
	handle /b/* {
		webrtc_signaling {
			hub shared
			backend altmemory
		}
	}
}
`, "is given two backends"},
		"unknown backend": {`
http://localhost:9080 {
	webrtc_signaling {
		backend nosuch
	}
}
`, "nosuch"},
		"options for memory": {`
http://localhost:9080 {
	webrtc_signaling {
		backend memory {
			url x
		}
	}
}
`, "backend memory has no options"},
	} {
		t.Run(name, func(t *testing.T) {
			if msg := loadConfigErr(t, "text/caddyfile", withGlobals("", tc.config)); !strings.Contains(msg, tc.want) {
				t.Fatalf("error %s, want %q", msg, tc.want)
			}
		})
	}
}
