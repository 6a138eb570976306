package natshub

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name, input, wantErr string
		want                 Backend
	}{
		{name: "bare", input: `nats`, want: Backend{}},
		{name: "all options", input: `nats {
			url          nats://10.0.0.5:4222 nats://10.0.0.6:4222
			prefix       webrtc
			node_timeout 15s
			replicas     3
			credentials  /etc/nats/site.creds
			token        {env.NATS_TOKEN}
			tls {
				ca   /etc/nats/ca.pem
				cert /etc/nats/cert.pem
				key  /etc/nats/key.pem
			}
		}`, want: Backend{
			URLs: []string{"nats://10.0.0.5:4222", "nats://10.0.0.6:4222"}, Prefix: "webrtc",
			NodeTimeout: caddy.Duration(15 * time.Second), Replicas: 3, CredentialsFile: "/etc/nats/site.creds",
			Token: "{env.NATS_TOKEN}", TLS: &TLS{CA: "/etc/nats/ca.pem", Cert: "/etc/nats/cert.pem", Key: "/etc/nats/key.pem"},
		}},
		{name: "nkey", input: "nats {\n nkey /seed\n}", want: Backend{NKeyFile: "/seed"}},
		{name: "argument", input: `nats nats://x:4222`, wantErr: "wrong argument count"},
		{name: "unknown", input: "nats {\n user bob\n}", wantErr: `unknown backend nats option "user"`},
		{name: "twice", input: "nats {\n prefix a\n prefix b\n}", wantErr: "prefix already specified"},
		{name: "no url", input: "nats {\n url\n}", wantErr: "wrong argument count"},
		{name: "zero timeout", input: "nats {\n node_timeout 0s\n}", wantErr: "node_timeout must be positive"},
		{name: "tls unknown", input: "nats {\n tls {\n pem x\n }\n}", wantErr: `unknown nats tls option "pem"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b Backend
			err := b.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b, tc.want) {
				t.Fatalf("got %+v, want %+v", b, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		b       Backend
		wantErr string
	}{
		{name: "defaults", b: Backend{}},
		{name: "scheme", b: Backend{URLs: []string{"http://x:4222"}}, wantErr: "scheme must be nats"},
		{name: "password not echoed", b: Backend{URLs: []string{"http://bob:s3cret@x:4222"}}, wantErr: "REDACTED"},
		{name: "prefix with a dot", b: Backend{Prefix: "a.b"}, wantErr: "nats prefix"},
		{name: "prefix too long", b: Backend{Prefix: strings.Repeat("p", maxPrefixLen+1)}, wantErr: "nats prefix"},
		{name: "short timeout", b: Backend{NodeTimeout: caddy.Duration(time.Second)}, wantErr: "at least 3s"},
		{name: "replicas", b: Backend{Replicas: 7}, wantErr: "1 to 5"},
		{name: "two auths", b: Backend{CredentialsFile: "a", NKeyFile: "b"}, wantErr: "give one"},
		{name: "cert without key", b: Backend{TLS: &TLS{Cert: "c"}}, wantErr: "go together"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.b.setDefaults()
			err := tc.b.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

// Every subject and bucket the hub uses starts with the prefix, so sites
// sharing a NATS do not meet.
func TestNamesStartWithThePrefix(t *testing.T) {
	srv := startNATS(t)
	hs := newHubs(t, srv.URL(), 1)
	hubtestJoin(t, hs[0])
	pfx := hs[0].cfg.prefix
	for _, name := range []string{hs[0].bucketName(), hs[0].nodeSubject("n"), hs[0].hbSubject("n"), hs[0].postSubject()} {
		if !strings.HasPrefix(name, pfx) {
			t.Errorf("%s does not start with %s", name, pfx)
		}
	}
	for _, s := range hs[0].subs {
		if !strings.HasPrefix(s.Subject, pfx+".") {
			t.Errorf("subscribed to %s", s.Subject)
		}
	}
	jsz, err := srv.Srv.Jsz(nil)
	if err != nil {
		t.Fatal(err)
	}
	if jsz.Streams != 1 {
		t.Fatalf("%d streams, want the one bucket", jsz.Streams)
	}
}

// Backend opens hubs for the signaling handler.
var _ signaling.HubBackend = (*Backend)(nil)
