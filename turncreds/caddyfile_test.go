package turncreds

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    Config
		wantErr string
	}{
		{
			name: "full",
			input: `turn_credentials {
				secret {env.TURN_SECRET} old-secret
				secret older
				ttl 1h
				user {http.auth.user.id}
				uris turn:turn.example.com:3478 turns:turn.example.com:5349?transport=tcp
				uris turn:[::1]
				stun stun:stun.example.com
			}`,
			want: Config{
				Secrets: []string{"{env.TURN_SECRET}", "old-secret", "older"},
				TTL:     caddy.Duration(time.Hour),
				User:    "{http.auth.user.id}",
				URIs:    []string{"turn:turn.example.com:3478", "turns:turn.example.com:5349?transport=tcp", "turn:[::1]"},
				STUN:    []string{"stun:stun.example.com"},
			},
		},
		{name: "empty block", input: `turn_credentials { }`},
		{name: "no block", input: `turn_credentials`},
		{name: "ttl in days", input: "turn_credentials {\nttl 2d\n}", want: Config{TTL: caddy.Duration(48 * time.Hour)}},
		{name: "quoted brace is an argument", input: "turn_credentials {\nsecret \"{\"\n}", want: Config{Secrets: []string{"{"}}},
		{name: "positional arg", input: `turn_credentials foo { }`, wantErr: "wrong argument count"},
		{name: "unknown subdirective", input: "turn_credentials {\nsecrets x\n}", wantErr: `unknown subdirective "secrets"`},
		{name: "secret without value", input: "turn_credentials {\nsecret\n}", wantErr: "wrong argument count"},
		{name: "uris without value", input: "turn_credentials {\nuris\n}", wantErr: "wrong argument count"},
		{name: "ttl two args", input: "turn_credentials {\nttl 1h 2h\n}", wantErr: "wrong argument count"},
		{name: "ttl bad", input: "turn_credentials {\nttl soon\n}", wantErr: `ttl "soon"`},
		{name: "ttl negative", input: "turn_credentials {\nttl -1h\n}", wantErr: "ttl must be positive"},
		// In JSON a 0 ttl means the default; written out, it is a mistake.
		{name: "ttl zero", input: "turn_credentials {\nttl 0\n}", wantErr: "ttl must be positive"},
		{name: "ttl twice", input: "turn_credentials {\nttl 1h\nttl 2h\n}", wantErr: "ttl already specified"},
		{name: "user twice", input: "turn_credentials {\nuser a\nuser b\n}", wantErr: "user already specified"},
		{name: "user missing", input: "turn_credentials {\nuser\n}", wantErr: "wrong argument count"},
		{name: "nested block", input: "turn_credentials {\nsecret a {\nstun stun:x\n}\n}", wantErr: "secret takes no block"},
		{name: "nested block after ttl", input: "turn_credentials {\nttl 1h {\nstun stun:x\n}\n}", wantErr: "ttl takes no block"},
		// Values are checked when the config loads, for JSON too; see
		// TestCaddyfileValuesCheckedAtProvision.
		{name: "bad uri parses", input: "turn_credentials {\nuris http://x\n}", want: Config{URIs: []string{"http://x"}}},
		{name: "short ttl parses", input: "turn_credentials {\nttl 500ms\n}", want: Config{TTL: caddy.Duration(500 * time.Millisecond)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h.Config, tt.want) {
				t.Errorf("got %+v\nwant %+v", h.Config, tt.want)
			}
		})
	}
}

// TestCaddyfileValuesCheckedAtProvision checks that values the parser
// takes as written are refused when the config loads, with the option and
// the value in the message.
func TestCaddyfileValuesCheckedAtProvision(t *testing.T) {
	tests := []struct{ name, block, wantErr string }{
		{"ttl under a second", "ttl 500ms\nuris turn:a.example", "ttl must be at least 1s, got 500ms"},
		{"not a TURN URI", "uris http://x", `invalid TURN URI "http://x"`},
		{"TURN URI in stun", "stun turn:a.example", `invalid STUN URI "turn:a.example"`},
		{"empty secret", "secret {env.CADDYWEBRTC_UNSET_SECRET}\nuris turn:a.example", `secret 2 of 2 ("{env.CADDYWEBRTC_UNSET_SECRET}") is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("turn_credentials {\nsecret s\n" + tt.block + "\n}")); err != nil {
				t.Fatalf("parsing: %v", err)
			}
			err := h.Provision(provisionCtx(t))
			if err == nil {
				err = h.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestParseBlockNested checks the credentials sub-block use: ParseBlock
// starts at whatever the current token is and stops at its closing brace.
func TestParseBlockNested(t *testing.T) {
	d := caddyfile.NewTestDispenser(`signaling /ws {
		rooms 10
		credentials {
			secret s1
			uris turn:turn.example.com
		}
		after_credentials yes
	}`)
	d.Next() // signaling
	d.NextArg()
	var c Config
	var after []string
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "credentials":
			if err := c.ParseBlock(d); err != nil {
				t.Fatal(err)
			}
		default:
			after = append(after, d.Val())
			d.RemainingArgs()
		}
	}
	want := Config{Secrets: []string{"s1"}, URIs: []string{"turn:turn.example.com"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v, want %+v", c, want)
	}
	if !reflect.DeepEqual(after, []string{"rooms", "after_credentials"}) {
		t.Errorf("outer directives seen = %v", after)
	}
}

func TestParseCaddyfile(t *testing.T) {
	h := httpcaddyfile.Helper{Dispenser: caddyfile.NewTestDispenser("turn_credentials {\nsecret s\nuris turn:a.example\n}")}
	mh, err := ParseCaddyfile(h)
	if err != nil {
		t.Fatal(err)
	}
	hd, ok := mh.(*Handler)
	if !ok || !reflect.DeepEqual(hd.Config, Config{Secrets: []string{"s"}, URIs: []string{"turn:a.example"}}) {
		t.Errorf("ParseCaddyfile = %#v", mh)
	}
}
