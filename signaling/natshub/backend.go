// Package natshub is a signaling hub whose rooms span several Caddy
// servers through NATS (module http.handlers.webrtc_signaling.hubs.nats).
// Peers of one room may be connected to different servers; they see each
// other and exchange frames as on one server.
//
// Design, in short (the README has the operator's view):
//
//   - Membership lives in the JetStream key-value bucket <prefix>_rooms, one
//     key per room, holding the members in join order with the node each is
//     connected to. Every change is a compare-and-set, so the room cap and
//     takeover hold cluster-wide under races.
//   - Each hub instance is a node with a random id. Everything meant for the
//     peers of node N (relayed frames and membership snapshots) is
//     published on <prefix>.node.<N> from the sender's one connection, so
//     NATS keeps the order between any two peers.
//   - Nodes publish heartbeats on <prefix>.hb.<N>. A node whose heartbeats
//     stop for node_timeout is removed from the rooms by the others, who
//     then tell their peers peer-left. A node only judges others after
//     being connected itself for node_timeout, so an outage of NATS never
//     makes a live peer leave; after reconnecting, a node re-asserts its own
//     members.
package natshub

import (
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyfileopt"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
)

// backendName is the module's name in the hubs namespace and the Backend
// the hub reports in its stats.
const backendName = "nats"

const (
	defaultPrefix      = "webrtc"
	defaultNodeTimeout = 15 * time.Second
	// minNodeTimeout leaves room for three heartbeats and a ping round
	// trip inside the timeout, so a slow but live node is not judged dead.
	minNodeTimeout = 3 * time.Second
	// maxPrefixLen keeps subjects and bucket names short.
	maxPrefixLen = 32
)

// prefixPattern is what may appear both in a subject token and in a
// JetStream bucket name.
var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Backend opens NATS hubs.
type Backend struct {
	// URLs are the NATS servers (nats://, tls://, ws://, wss://); the
	// client tries them all and reconnects forever. Default
	// nats://127.0.0.1:4222.
	URLs []string `json:"urls,omitempty"`
	// Prefix starts every subject and bucket this backend uses, so several
	// sites can share a NATS. Default webrtc.
	Prefix string `json:"prefix,omitempty"`
	// NodeTimeout is how long a server may go unheard before the others
	// remove its peers from the rooms. Default 15s.
	NodeTimeout caddy.Duration `json:"node_timeout,omitempty"`
	// Replicas of the membership bucket when it is created (a JetStream
	// cluster of three wants 3). Default 1.
	Replicas int `json:"replicas,omitempty"`
	// CredentialsFile is a NATS .creds file (JWT and nkey seed).
	CredentialsFile string `json:"credentials_file,omitempty"`
	// NKeyFile is a file holding an nkey seed.
	NKeyFile string `json:"nkey_file,omitempty"`
	// Token is an authentication token; placeholders such as {env.NATS_TOKEN}
	// are resolved at load. It is never logged.
	Token string `json:"token,omitempty"`
	// TLS configures a TLS connection to NATS.
	TLS *TLS `json:"tls,omitempty"`

	logger *zap.Logger
}

// TLS names the files of a TLS connection to NATS.
type TLS struct {
	CA   string `json:"ca,omitempty"`
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
}

// Backend is a signaling.HubBackend: backend_test.go says so, since this
// package does not import signaling (the Caddy handler, with its WebSocket
// and token dependencies); it needs only the hub layer below it.
var (
	_ caddy.Provisioner     = (*Backend)(nil)
	_ caddy.Validator       = (*Backend)(nil)
	_ caddyfile.Unmarshaler = (*Backend)(nil)
)

// CaddyModule returns the Caddy module information.
func (Backend) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webrtc_signaling.hubs." + backendName,
		New: func() caddy.Module { return new(Backend) },
	}
}

// Provision fills in defaults and resolves placeholders.
func (b *Backend) Provision(ctx caddy.Context) error {
	b.logger = ctx.Logger()
	b.setDefaults()
	repl := caddy.NewReplacer()
	b.Token = repl.ReplaceKnown(b.Token, "")
	b.CredentialsFile = repl.ReplaceKnown(b.CredentialsFile, "")
	b.NKeyFile = repl.ReplaceKnown(b.NKeyFile, "")
	return nil
}

func (b *Backend) setDefaults() {
	if len(b.URLs) == 0 {
		b.URLs = []string{nats.DefaultURL}
	}
	if b.Prefix == "" {
		b.Prefix = defaultPrefix
	}
	if b.NodeTimeout == 0 {
		b.NodeTimeout = caddy.Duration(defaultNodeTimeout)
	}
	if b.Replicas == 0 {
		b.Replicas = 1
	}
}

// Validate checks the configuration.
func (b *Backend) Validate() error {
	for _, u := range b.URLs {
		if err := checkURL(u); err != nil {
			return err
		}
	}
	if len(b.Prefix) > maxPrefixLen || !prefixPattern.MatchString(b.Prefix) {
		return fmt.Errorf("nats prefix %q: use up to %d letters, digits, - or _", b.Prefix, maxPrefixLen)
	}
	if time.Duration(b.NodeTimeout) < minNodeTimeout {
		return fmt.Errorf("nats node_timeout %s: must be at least %s", time.Duration(b.NodeTimeout), minNodeTimeout)
	}
	if b.Replicas < 0 || b.Replicas > 5 { // 0 is the default, 1
		return fmt.Errorf("nats replicas %d: JetStream allows 1 to 5", b.Replicas)
	}
	if b.CredentialsFile != "" && b.NKeyFile != "" {
		return fmt.Errorf("nats: credentials and nkey are two ways to authenticate; give one")
	}
	if b.TLS != nil && (b.TLS.Cert == "") != (b.TLS.Key == "") {
		return fmt.Errorf("nats tls: cert and key go together")
	}
	return nil
}

// checkURL accepts what nats.go dials, without echoing credentials an URL
// may carry into the error.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("nats url: %q is not a URL such as nats://host:4222", redactURL(s))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
		return nil
	}
	return fmt.Errorf("nats url %s: scheme must be nats, tls, ws or wss", redactURL(s))
}

// redactURL hides a password or token in a URL's user part.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if err != nil {
			return "(unparsable)"
		}
		return s
	}
	u.User = url.User("REDACTED")
	return u.String()
}

// OpenHub implements signaling.HubBackend. It dials nothing: the hub
// connects when first used (a join, a resume or a post through it, its
// counts asked for), so `caddy validate` and configs whose hub is never
// used leave NATS alone.
func (b *Backend) OpenHub(name string) (hub.Hub, error) {
	b.setDefaults()
	opts, err := b.authOptions()
	if err != nil {
		return nil, err
	}
	logger := b.logger
	if logger == nil {
		logger = zap.NewNop()
	}
	return newHub(name, config{
		urls:        b.URLs,
		prefix:      b.Prefix,
		nodeTimeout: time.Duration(b.NodeTimeout),
		replicas:    b.Replicas,
		options:     opts,
	}, logger), nil
}

// authOptions turns the credentials and TLS settings into client options.
func (b *Backend) authOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if b.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(b.CredentialsFile))
	}
	if b.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(b.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkey %s: %w", b.NKeyFile, err)
		}
		opts = append(opts, o)
	}
	if b.Token != "" {
		opts = append(opts, nats.Token(b.Token))
	}
	if t := b.TLS; t != nil {
		if t.CA != "" {
			opts = append(opts, nats.RootCAs(t.CA))
		}
		if t.Cert != "" {
			opts = append(opts, nats.ClientCert(t.Cert, t.Key))
		}
	}
	return opts, nil
}

// UnmarshalCaddyfile reads
//
//	backend nats {
//	    url          <url...>
//	    prefix       <prefix>
//	    node_timeout <duration>
//	    replicas     <n>
//	    credentials  <file>
//	    nkey         <seed file>
//	    token        <token>
//	    tls {
//	        ca   <file>
//	        cert <file>
//	        key  <file>
//	    }
//	}
func (b *Backend) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := caddyfileopt.Once(d, seen); err != nil {
			return err
		}
		if err := b.unmarshalOption(d); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) unmarshalOption(d *caddyfile.Dispenser) error {
	var err error
	switch d.Val() {
	case "url":
		b.URLs, err = caddyfileopt.Strings(d)
	case "prefix":
		b.Prefix, err = caddyfileopt.String(d)
	case "node_timeout":
		b.NodeTimeout, err = caddyfileopt.PositiveDuration(d)
	case "replicas":
		b.Replicas, err = caddyfileopt.PositiveInt(d)
	case "credentials":
		b.CredentialsFile, err = caddyfileopt.String(d)
	case "nkey":
		b.NKeyFile, err = caddyfileopt.String(d)
	case "token":
		b.Token, err = caddyfileopt.String(d)
	case "tls":
		b.TLS, err = unmarshalTLS(d)
	default:
		return d.Errf("unknown backend nats option %q", d.Val())
	}
	return err
}

func unmarshalTLS(d *caddyfile.Dispenser) (*TLS, error) {
	if err := caddyfileopt.NoArgs(d); err != nil {
		return nil, err
	}
	t := new(TLS)
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := caddyfileopt.Once(d, seen); err != nil {
			return nil, err
		}
		var err error
		switch d.Val() {
		case "ca":
			t.CA, err = caddyfileopt.String(d)
		case "cert":
			t.Cert, err = caddyfileopt.String(d)
		case "key":
			t.Key, err = caddyfileopt.String(d)
		default:
			return nil, d.Errf("unknown nats tls option %q", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}
