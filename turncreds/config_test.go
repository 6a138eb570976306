package turncreds

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// provisionCtx returns a bare Caddy context, as Caddy's own tests build one:
// no config, hence no apps.
func provisionCtx(t *testing.T) caddy.Context {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

func TestProvision(t *testing.T) {
	t.Setenv("TURNCREDS_TEST_SECRET", "from-env")
	t.Setenv("TURNCREDS_TEST_HOST", "turn.example.com")
	t.Setenv("TURNCREDS_TEST_EMPTY", "")
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		cfg         Config
		wantSecrets []string
		wantTURN    []string
		wantSTUN    []string
		wantTTL     time.Duration
		wantErr     string // substring of the Provision error
		wantInvalid string // substring of the Validate error
	}{
		{
			name:        "placeholders and defaults",
			cfg:         Config{Secrets: []string{"{env.TURNCREDS_TEST_SECRET}", "{file." + secretFile + "}", "lit{eral}"}, URIs: []string{"turn:{env.TURNCREDS_TEST_HOST}:3478"}},
			wantSecrets: []string{"from-env", "from-file", "lit{eral}"},
			wantTURN:    []string{"turn:turn.example.com:3478"},
			wantTTL:     DefaultTTL,
		},
		{
			name:        "stun only, explicit ttl",
			cfg:         Config{Secrets: []string{"s"}, STUN: []string{"STUN:stun.example.com"}, TTL: caddy.Duration(time.Minute)},
			wantSecrets: []string{"s"},
			wantSTUN:    []string{"stun:stun.example.com"},
			wantTTL:     time.Minute,
		},
		{
			name:    "unset env secret names the secret",
			cfg:     Config{Secrets: []string{"ok", "{env.TURNCREDS_TEST_UNSET_XYZ}"}, URIs: []string{"turn:a.example"}},
			wantErr: `secret 2 of 2 ("{env.TURNCREDS_TEST_UNSET_XYZ}") is empty after placeholder replacement`,
		},
		{
			name:    "empty env secret",
			cfg:     Config{Secrets: []string{"{env.TURNCREDS_TEST_EMPTY}"}, URIs: []string{"turn:a.example"}},
			wantErr: "secret 1 of 1",
		},
		{
			name:    "missing secret file",
			cfg:     Config{Secrets: []string{"{file." + filepath.Join(t.TempDir(), "nope") + "}"}, URIs: []string{"turn:a.example"}},
			wantErr: "secret 1 of 1",
		},
		{
			name:    "bad port named",
			cfg:     Config{Secrets: []string{"s"}, URIs: []string{"turn:foo:99999"}},
			wantErr: `invalid TURN URI "turn:foo:99999": port out of range`,
		},
		{
			name:    "bad URI after placeholder replacement is named",
			cfg:     Config{Secrets: []string{"s"}, URIs: []string{"turn:{env.TURNCREDS_TEST_EMPTY}:3478"}},
			wantErr: `invalid TURN URI "turn::3478": missing host`,
		},
		{
			name:    "stun URI in uris",
			cfg:     Config{Secrets: []string{"s"}, URIs: []string{"stun:a.example"}},
			wantErr: `invalid TURN URI "stun:a.example"`,
		},
		{
			name:    "turn URI in stun",
			cfg:     Config{Secrets: []string{"s"}, STUN: []string{"turns:a.example"}},
			wantErr: `invalid STUN URI "turns:a.example"`,
		},
		{
			name:    "ttl below a second",
			cfg:     Config{Secrets: []string{"s"}, URIs: []string{"turn:a.example"}, TTL: caddy.Duration(time.Millisecond)},
			wantErr: "ttl must be at least 1s",
		},
		{
			name:        "no secret and no turn app",
			cfg:         Config{URIs: []string{"turn:a.example"}},
			wantTURN:    []string{"turn:a.example"},
			wantTTL:     DefaultTTL,
			wantInvalid: "no TURN secret",
		},
		{
			name:        "no URIs and no turn app",
			cfg:         Config{Secrets: []string{"s"}},
			wantSecrets: []string{"s"},
			wantTTL:     DefaultTTL,
			wantInvalid: "at least one of uris/stun",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			err := c.Provision(provisionCtx(t))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Provision error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Provision: %v", err)
			}
			verr := c.Validate()
			if tt.wantInvalid != "" {
				if verr == nil || !strings.Contains(verr.Error(), tt.wantInvalid) {
					t.Fatalf("Validate error = %v, want one containing %q", verr, tt.wantInvalid)
				}
			} else if verr != nil {
				t.Fatalf("Validate: %v", verr)
			}
			if !sameStrings(c.secrets, tt.wantSecrets) || !sameStrings(c.turn, tt.wantTURN) || !sameStrings(c.stun, tt.wantSTUN) {
				t.Errorf("resolved secrets=%q turn=%q stun=%q", c.secrets, c.turn, c.stun)
			}
			if time.Duration(c.TTL) != tt.wantTTL {
				t.Errorf("TTL = %v, want %v", time.Duration(c.TTL), tt.wantTTL)
			}
			// Resolved secrets must never be written back into the config.
			if !reflect.DeepEqual(c.Secrets, tt.cfg.Secrets) {
				t.Errorf("Secrets changed to %q", c.Secrets)
			}
		})
	}
}

// TestProvisionErrorHidesSecret makes sure a literal secret never appears in
// an error, even next to one that fails.
func TestProvisionErrorHidesSecret(t *testing.T) {
	c := Config{Secrets: []string{"hunter2-literal", "{env.TURNCREDS_TEST_UNSET_XYZ}"}, URIs: []string{"turn:a.example"}}
	err := c.Provision(provisionCtx(t))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error = %v", err)
	}
}

func sameStrings(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}
