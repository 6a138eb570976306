package caddywebrtc

import (
	"encoding/json"
	"fmt"
	"net"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// A Caddyfile naming the NATS backend adapts to the documented JSON and
// validates (caddy validate provisions the handler, which opens the hub)
// without NATS being there: the hub dials only when a peer joins.
func TestNATSBackendCaddyfileValidatesWithoutNATS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there any more
	caddyfile := fmt.Sprintf(`{
	admin off
}
:0 {
	webrtc_signaling /ws {
		hub natsvalidate
		backend nats {
			url nats://127.0.0.1:%d nats://127.0.0.2:%d
			prefix site1
			node_timeout 15s
			token {env.NATS_TOKEN}
		}
	}
}`, closedPort, closedPort)
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	var tree any
	if err := json.Unmarshal(adapted, &tree); err != nil {
		t.Fatal(err)
	}
	backend := findBackend(tree)
	want := fmt.Sprintf(`{"module":"nats","node_timeout":15000000000,"prefix":"site1","token":"{env.NATS_TOKEN}","urls":["nats://127.0.0.1:%d","nats://127.0.0.2:%d"]}`, closedPort, closedPort)
	if backend != want {
		t.Fatalf("backend JSON\n%s\nwant\n%s", backend, want)
	}
	var full caddy.Config
	if err := json.Unmarshal(adapted, &full); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&full); err != nil {
		t.Fatalf("validating: %v", err)
	}
}

// findBackend returns, keys sorted, the backend object of the first
// webrtc_signaling handler anywhere in an adapted config.
func findBackend(node any) string {
	switch n := node.(type) {
	case map[string]any:
		if n["handler"] == "webrtc_signaling" {
			b, _ := json.Marshal(n["backend"])
			return string(b)
		}
		for _, v := range n {
			if s := findBackend(v); s != "" {
				return s
			}
		}
	case []any:
		for _, v := range n {
			if s := findBackend(v); s != "" {
				return s
			}
		}
	}
	return ""
}
