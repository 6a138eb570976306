package caddywebrtc

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestModulesRegistered(t *testing.T) {
	for _, id := range []string{"http.handlers.webrtc_signaling", "http.handlers.webrtc_rooms", "http.handlers.turn_credentials", "turn", "caddy.listeners.turn", "admin.api.webrtc_signaling", "http.handlers.webrtc_signaling.hubs.nats"} {
		if _, err := caddy.GetModule(id); err != nil {
			t.Errorf("module %s: %v", id, err)
		}
	}
}

// The example Caddyfile adapts and provisions (caddy validate), without
// binding anything.
func TestExampleCaddyfileValidates(t *testing.T) {
	body, err := os.ReadFile("examples/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	validateCaddyfile(t, body, "examples/Caddyfile")
}

// The README's Caddyfile for TURNS on the site's port adapts and loads,
// and puts the wrapper on the :443 server.
func TestReadmeSiteTURNSExampleValidates(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "### TURNS on port 443")
	if ok {
		_, rest, ok = strings.Cut(rest, "```caddyfile\n")
	}
	if !ok {
		t.Fatal("README has no Caddyfile example for TURNS on the site's port")
	}
	example, _, _ := strings.Cut(rest, "```")
	t.Setenv("TURN_SECRET", "readme-secret")
	var adapted struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen           []string         `json:"listen"`
					ListenerWrappers []map[string]any `json:"listener_wrappers"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(validateCaddyfile(t, []byte(example), "README.md"), &adapted); err != nil {
		t.Fatal(err)
	}
	httpApp := adapted.Apps.HTTP
	for _, srv := range httpApp.Servers {
		if len(srv.Listen) == 1 && srv.Listen[0] == ":443" {
			if len(srv.ListenerWrappers) != 1 || srv.ListenerWrappers[0]["wrapper"] != "turn" {
				t.Fatalf(":443 listener wrappers %v, want the turn wrapper", srv.ListenerWrappers)
			}
			return
		}
	}
	t.Fatalf("no :443 server in %+v", httpApp.Servers)
}

// validateCaddyfile adapts body, fails on warnings, provisions the result
// as caddy validate does, binding nothing, and returns the adapted JSON.
func validateCaddyfile(t *testing.T, body []byte, filename string) []byte {
	t.Helper()
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": filename})
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("adapter warning: %s", w.String())
	}
	var cfg caddy.Config
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("validating: %v", err)
	}
	return adapted
}

// The README's JSON config example loads (caddy validate), so it stays true.
func TestReadmeJSONExampleValidates(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## JSON config\n\n```json\n")
	if !ok {
		t.Fatal("README has no JSON config example")
	}
	example, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("unterminated JSON example")
	}
	t.Setenv("TURN_SECRET", "readme-secret")
	t.Setenv("ROOM_TOKEN_SECRET", "readme-room-secret")
	t.Setenv("PUBLIC_IP", "203.0.113.10")
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(example), &cfg); err != nil {
		t.Fatalf("README JSON: %v", err)
	}
	cfg.Admin = &caddy.AdminConfig{Disabled: true}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("validating the README JSON: %v", err)
	}
}
