package turncreds

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// fakeTURNApp stands in for the embedded TURN app: a Source registered as
// the SourceAppName app.
type fakeTURNApp struct {
	Secrets []string `json:"secrets,omitempty"`

	mu    sync.Mutex
	hosts []string // hosts ICEURIs was asked for
}

func (*fakeTURNApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: SourceAppName, New: func() caddy.Module { return new(fakeTURNApp) }}
}
func (*fakeTURNApp) Start() error { return nil }
func (*fakeTURNApp) Stop() error  { return nil }

func (a *fakeTURNApp) TURNSecrets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.Secrets
}

func (a *fakeTURNApp) ICEURIs(host string) (stun, turn []string) {
	a.mu.Lock()
	a.hosts = append(a.hosts, host)
	a.mu.Unlock()
	return []string{"stun:" + host}, []string{"turn:" + host + ":3478"}
}

func (a *fakeTURNApp) rotate(secrets ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.Secrets = secrets
}

// probeApp provisions a Config inside a real Caddy config load, the way the
// handler does inside the http app, and records what it got.
type probeApp struct {
	Config Config `json:"config"`
}

var probed struct {
	sync.Mutex
	cfg *Config
}

func (*probeApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "turncreds_test_probe", New: func() caddy.Module { return new(probeApp) }}
}
func (*probeApp) Start() error { return nil }
func (*probeApp) Stop() error  { return nil }
func (p *probeApp) Provision(ctx caddy.Context) error {
	probed.Lock()
	probed.cfg = &p.Config
	probed.Unlock()
	return p.Config.Provision(ctx)
}
func (p *probeApp) Validate() error { return p.Config.Validate() }

var registerOnce sync.Once

// validateWithApps runs caddy.Validate (load and provision, no start) on a
// config made of the given apps, and returns the probe's Config.
func validateWithApps(t *testing.T, apps map[string]any) (*Config, error) {
	t.Helper()
	registerOnce.Do(func() {
		caddy.RegisterModule(new(fakeTURNApp))
		caddy.RegisterModule(new(probeApp))
	})
	// Keep Caddy's storage and autosave away from the real home directory.
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	raw := make(caddy.ModuleMap)
	for name, app := range apps {
		b, err := json.Marshal(app)
		if err != nil {
			t.Fatal(err)
		}
		raw[name] = b
	}
	err := caddy.Validate(&caddy.Config{Admin: &caddy.AdminConfig{Disabled: true}, AppsRaw: raw})
	probed.Lock()
	defer probed.Unlock()
	return probed.cfg, err
}

func TestSourceFallback(t *testing.T) {
	tests := []struct {
		name    string
		probe   Config
		turnApp bool
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{
			name:    "everything from the turn app",
			probe:   Config{},
			turnApp: true,
			check: func(t *testing.T, c *Config) {
				if c.src == nil {
					t.Fatal("turn app not picked up")
				}
			},
		},
		{
			name:    "explicit values need no app",
			probe:   Config{Secrets: []string{"s"}, URIs: []string{"turn:a.example"}},
			turnApp: true,
			check: func(t *testing.T, c *Config) {
				if c.src != nil {
					t.Error("turn app loaded although nothing was missing")
				}
			},
		},
		{name: "no turn app, no secret", probe: Config{URIs: []string{"turn:a.example"}}, wantErr: "no TURN secret"},
		{name: "no turn app, no URIs", probe: Config{Secrets: []string{"s"}}, wantErr: "at least one of uris/stun"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps := map[string]any{"turncreds_test_probe": probeApp{Config: tt.probe}}
			if tt.turnApp {
				apps[SourceAppName] = &fakeTURNApp{Secrets: []string{"app-secret"}}
			}
			c, err := validateWithApps(t, apps)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Validate error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestIssueFromSource checks that Issue asks the source per request: URIs
// for the request's host (port and IPv6 brackets stripped) and the current
// first secret, so that rotation in the app takes effect at once.
func TestIssueFromSource(t *testing.T) {
	app := &fakeTURNApp{Secrets: []string{"first", "second"}}
	c := Config{User: "alice"}
	if err := c.Provision(provisionCtx(t)); err != nil {
		t.Fatal(err)
	}
	c.src = app // what Provision does when the app is configured
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)

	for _, tt := range []struct{ host, want string }{
		{"example.com", "example.com"},
		{"example.com:8443", "example.com"},
		{"[::1]:443", "::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"192.0.2.1:80", "192.0.2.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = tt.host
		creds := c.Issue(r, now)
		wantTURN := []string{"turn:" + tt.want + ":3478"}
		if !reflect.DeepEqual(creds.TURNURIs, wantTURN) {
			t.Errorf("host %q: TURNURIs = %q, want %q", tt.host, creds.TURNURIs, wantTURN)
		}
		if err := Verify([]string{"first"}, creds.Username, creds.Password, now); err != nil {
			t.Errorf("host %q: not signed with the first secret: %v", tt.host, err)
		}
	}

	app.rotate("third", "first")
	creds := c.Issue(httptest.NewRequest("GET", "/", nil), now)
	if i, err := MatchSecret([]string{"first", "third"}, creds.Username, creds.Password, now); i != 1 || err != nil {
		t.Errorf("after rotation signed with secret %d (%v), want the new first one", i, err)
	}

	app.rotate()
	creds = c.Issue(httptest.NewRequest("GET", "/", nil), now)
	if creds.Password != "" || creds.TURNURIs != nil || len(creds.ICEServers) != 1 {
		t.Errorf("without secrets the app's TURN URIs must be left out, got %+v", creds)
	}
}
