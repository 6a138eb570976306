package turnapp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func TestParseGlobalOption(t *testing.T) {
	tests := []struct {
		name, input, wantErr string
		check                func(*testing.T, App)
	}{
		{name: "full", input: `turn {
			realm example.com
			secret new old
			secret older
			listen udp/:3478 tcp/:3478
			tls :5349 turn.example.com
			public_ip 203.0.113.9
			relay_address 10.0.0.5
			relay_ports 49152-65535
			deny_peers 203.0.113.0/24
			allow_peers 10.0.0.0/8
			max_allocations_per_user 5
			max_lifetime 2h
			receive_buffer 8MiB
		}`, check: func(t *testing.T, a App) {
			if a.Realm != "example.com" || strings.Join(a.Secrets, ",") != "new,old,older" || len(a.Listen) != 2 ||
				a.TLS == nil || a.TLS.Address != ":5349" || a.TLS.Hostname != "turn.example.com" || a.PublicIP != "203.0.113.9" ||
				a.RelayAddress != "10.0.0.5" || a.RelayPorts != "49152-65535" || len(a.DenyPeers) != 1 || len(a.AllowPeers) != 1 ||
				a.MaxAllocationsPerUser != 5 || time.Duration(a.MaxLifetime) != 2*time.Hour || a.ReceiveBuffer != 8<<20 {
				t.Fatalf("parsed %+v", a)
			}
		}},
		{name: "tls without hostname", input: "turn {\n secret s\n tls :5349\n}", check: func(t *testing.T, a App) {
			if a.TLS == nil || a.TLS.Hostname != "" {
				t.Fatalf("tls %+v", a.TLS)
			}
		}},
		{name: "unknown", input: "turn {\n colour blue\n}", wantErr: `unknown turn option "colour"`},
		{name: "args on turn", input: "turn now", wantErr: "wrong argument count"},
		{name: "realm twice args", input: "turn {\n realm a b\n}", wantErr: "wrong argument count"},
		{name: "no secret args", input: "turn {\n secret\n}", wantErr: "wrong argument count or unexpected line ending after 'secret'"},
		{name: "quota not a number", input: "turn {\n max_allocations_per_user many\n}", wantErr: `max_allocations_per_user must be an integer, got "many"`},
		{name: "bad lifetime", input: "turn {\n max_lifetime soon\n}", wantErr: `max_lifetime "soon"`},
		{name: "bad receive buffer", input: "turn {\n receive_buffer lots\n}", wantErr: `receive_buffer "lots"`},
		{name: "tls too many", input: "turn {\n tls :1 a b\n}", wantErr: "tls takes 1 to 2 arguments, got 3"},
		{name: "tls without address", input: "turn {\n tls\n}", wantErr: "tls takes 1 to 2 arguments, got 0"},
		{name: "block after an option", input: "turn {\n realm r {\n secret s\n }\n}", wantErr: "realm takes no block"},
		// Values are checked when the config loads, for JSON too; see
		// TestCaddyfileValuesCheckedAtProvision.
		{name: "values parse as written", input: "turn {\n relay_ports 9-2\n max_allocations_per_user -1\n max_lifetime -1h\n}", check: func(t *testing.T, a App) {
			if a.RelayPorts != "9-2" || a.MaxAllocationsPerUser != -1 || time.Duration(a.MaxLifetime) != -time.Hour {
				t.Fatalf("parsed %+v", a)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ParseGlobalOption(caddyfile.NewTestDispenser(tc.input), nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var a App
			if err := json.Unmarshal(v.(httpcaddyfile.App).Value, &a); err != nil {
				t.Fatal(err)
			}
			tc.check(t, a)
		})
	}
	if _, err := ParseGlobalOption(caddyfile.NewTestDispenser("turn"), httpcaddyfile.App{}); err == nil {
		t.Error("a second turn block was accepted")
	}
}

// TestCaddyfileValuesCheckedAtProvision checks that values the parser
// takes as written are refused when the config loads (Provision and
// Validate), naming the option and the value.
func TestCaddyfileValuesCheckedAtProvision(t *testing.T) {
	tests := []struct{ name, option, wantErr string }{
		{"reversed relay ports", "relay_ports 9-2", `relay_ports "9-2": want min-max`},
		{"trailing garbage in relay ports", "relay_ports 10-20x", `relay_ports "10-20x": want min-max`},
		{"relay port out of range", "relay_ports 1-70000", `relay_ports "1-70000": want min-max`},
		{"negative quota", "max_allocations_per_user -1", "max_allocations_per_user must not be negative, got -1"},
		{"negative lifetime", "max_lifetime -1h", "max_lifetime must not be negative, got -1h0m0s"},
		{"huge receive buffer", "receive_buffer 2GiB", "receive_buffer must be between 0"},
		{"bad deny", "deny_peers 10.0.0.0/33", `deny_peers: invalid CIDR or IP "10.0.0.0/33"`},
		{"bad allow", "allow_peers nope", `allow_peers: invalid CIDR or IP "nope"`},
		{"bad listen", "listen sctp/:1", `listen "sctp/:1": network must be udp or tcp`},
		{"tls over udp", "tls udp/:5349", "tls: listen on tcp, not udp"},
		{"bad public ip", "public_ip nope", `public_ip "nope" is not an IP address`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			input := "turn {\n secret s\n relay_address 127.0.0.1\n " + tc.option + "\n}"
			v, err := ParseGlobalOption(caddyfile.NewTestDispenser(input), nil)
			if err != nil {
				t.Fatalf("parsing: %v", err)
			}
			var a App
			if err := json.Unmarshal(v.(httpcaddyfile.App).Value, &a); err != nil {
				t.Fatal(err)
			}
			if err := provisioned(t, &a); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func provisioned(t *testing.T, a *App) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	if err := a.Provision(ctx); err != nil {
		return err
	}
	return a.Validate()
}

func TestProvision(t *testing.T) {
	t.Setenv("TURN_TEST_SECRET", "from-env")
	t.Setenv("TURN_TEST_IP", "198.51.100.4")
	tests := []struct {
		name    string
		app     App
		wantErr string
		check   func(*testing.T, *App)
	}{
		{name: "defaults", app: App{Secrets: []string{"{env.TURN_TEST_SECRET}"}, RelayAddress: "127.0.0.1"}, check: func(t *testing.T, a *App) {
			if a.TURNSecrets()[0] != "from-env" || a.Realm != "caddy" || len(a.binding.Listeners) != 2 || a.binding.PublicIP != "127.0.0.1" ||
				a.binding.ReceiveBuffer != DefaultReceiveBuffer {
				t.Fatalf("provisioned %+v %+v", a, a.binding)
			}
			stun, turn := a.ICEURIs("example.com")
			if strings.Join(stun, " ") != "stun:example.com:3478" ||
				strings.Join(turn, " ") != "turn:example.com:3478?transport=udp turn:example.com:3478?transport=tcp" {
				t.Fatalf("URIs %v %v", stun, turn)
			}
		}},
		{name: "placeholders and tls", app: App{Secrets: []string{"s"}, PublicIP: "{env.TURN_TEST_IP}", Listen: []string{"udp/[::1]:3480"}, TLS: &TLSListener{Address: ":5349"}, Realm: "turn.example.com"}, check: func(t *testing.T, a *App) {
			if a.binding.PublicIP != "198.51.100.4" || a.TLS.Hostname != "turn.example.com" {
				t.Fatalf("provisioned %+v", a.binding)
			}
			stun, turn := a.ICEURIs("example.com")
			if strings.Join(stun, " ") != "stun:[::1]:3480" || strings.Join(turn, " ") != "turn:[::1]:3480?transport=udp turns:turn.example.com:5349?transport=tcp" {
				t.Fatalf("URIs %v %v", stun, turn)
			}
		}},
		{name: "no secret", app: App{}, wantErr: "at least one secret"},
		{name: "empty env secret", app: App{Secrets: []string{"{env.TURN_TEST_UNSET}"}}, wantErr: "empty after placeholder"},
		{name: "bad listen", app: App{Secrets: []string{"s"}, Listen: []string{"sctp/:1"}}, wantErr: "udp or tcp"},
		{name: "port range listen", app: App{Secrets: []string{"s"}, Listen: []string{"udp/:3478-3479"}}, wantErr: "one port"},
		{name: "tls over udp", app: App{Secrets: []string{"s"}, TLS: &TLSListener{Address: "udp/:5349"}}, wantErr: "tls"},
		{name: "bad public ip", app: App{Secrets: []string{"s"}, PublicIP: "nope"}, wantErr: "public_ip"},
		{name: "bad relay address", app: App{Secrets: []string{"s"}, RelayAddress: "nope"}, wantErr: "relay_address"},
		{name: "bad deny", app: App{Secrets: []string{"s"}, RelayAddress: "127.0.0.1", DenyPeers: []string{"x"}}, wantErr: "deny_peers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.app
			err := provisioned(t, &a)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, &a)
		})
	}
}
