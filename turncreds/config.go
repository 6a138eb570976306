package turncreds

import (
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// DefaultTTL is how long issued credentials stay valid when TTL is unset.
const DefaultTTL = 24 * time.Hour

// Config says how to issue TURN credentials. It is shared by the
// turn_credentials handler and the signaling handler's credentials block.
//
// Fields left empty fall back on the embedded TURN app (see Source) when one
// is configured: secrets when Secrets is empty, and all URIs when both URIs
// and STUN are empty. Explicit values always win.
type Config struct {
	// Secrets are the shared secrets of the TURN server. The first one signs
	// new credentials; all of them are accepted, which allows rotation.
	// Placeholders such as {env.TURN_SECRET} or {file.path} are replaced
	// once, at provision time; unknown ones are kept as literal text.
	Secrets []string `json:"secrets,omitempty"`

	// TTL is how long issued credentials stay valid. Default: 24h.
	TTL caddy.Duration `json:"ttl,omitempty"`

	// User is a placeholder expression, evaluated per request, that names
	// the user in the credential (e.g. {http.auth.user.id}); the TURN
	// server sees it in logs and quotas. When it is empty or evaluates to
	// "", a random unguessable id is used. It may contain ':' because the
	// expiry is always the part of the username before the first ':'.
	User string `json:"user,omitempty"`

	// URIs are the turn: and turns: URIs (RFC 7065) the credentials are for.
	// Placeholders are replaced at provision time.
	URIs []string `json:"uris,omitempty"`

	// STUN are stun: and stuns: URIs (RFC 7064) handed out alongside.
	// Placeholders are replaced at provision time.
	STUN []string `json:"stun,omitempty"`

	// Resolved at provision; kept apart from the exported fields so that the
	// config, if ever marshaled back, never contains secret values.
	secrets []string
	turn    []string
	stun    []string
	src     Source
}

// Provision resolves placeholders in the secrets and URIs, applies defaults,
// validates the URIs, and picks up the embedded TURN app as a fallback
// source when something is missing and that app is configured.
func (c *Config) Provision(ctx caddy.Context) error {
	if err := registerCredsMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	repl := caddy.NewReplacer()

	var err error
	if c.secrets, err = ResolveSecrets(repl, c.Secrets); err != nil {
		return err
	}

	if c.TTL == 0 {
		c.TTL = caddy.Duration(DefaultTTL)
	}
	// The username carries the expiry in whole seconds.
	if time.Duration(c.TTL) < time.Second {
		return fmt.Errorf("ttl must be at least 1s, got %s", time.Duration(c.TTL))
	}

	if c.turn, err = parseList(replaceAll(repl, c.URIs), true); err != nil {
		return err
	}
	if c.stun, err = parseList(replaceAll(repl, c.STUN), false); err != nil {
		return err
	}

	c.src = nil
	if len(c.secrets) == 0 || len(c.turn)+len(c.stun) == 0 {
		// AppIfConfigured, not App: App would instantiate an unconfigured app.
		app, err := ctx.AppIfConfigured(SourceAppName)
		switch {
		case errors.Is(err, caddy.ErrNotConfigured):
		case err != nil:
			return fmt.Errorf("loading %s app for credentials: %w", SourceAppName, err)
		default:
			c.src, _ = app.(Source)
		}
	}
	return nil
}

// Validate reports a configuration that cannot issue credentials: no secret
// or no URIs, with no TURN app to fill in.
func (c *Config) Validate() error {
	if len(c.secrets) == 0 && c.src == nil {
		return fmt.Errorf("no TURN secret: set secret, or configure the %s app", SourceAppName)
	}
	if len(c.turn)+len(c.stun) == 0 && c.src == nil {
		return fmt.Errorf("at least one of uris/stun is required, or configure the %s app", SourceAppName)
	}
	return nil
}

// ResolveSecrets replaces placeholders such as {env.TURN_SECRET} in
// configured secrets. A secret that comes out empty is an error; the error
// quotes the configured text, which can then only hold placeholders, so it
// never reveals a secret.
func ResolveSecrets(repl *caddy.Replacer, raw []string) ([]string, error) {
	out := make([]string, 0, len(raw))
	for i, r := range raw {
		// ReplaceKnown keeps literal braces in secrets that are not placeholders.
		s := repl.ReplaceKnown(r, "")
		if s == "" {
			return nil, fmt.Errorf("secret %d of %d (%q) is empty after placeholder replacement", i+1, len(raw), r)
		}
		out = append(out, s)
	}
	return out, nil
}

// replaceAll replaces known placeholders in every element of in.
func replaceAll(repl *caddy.Replacer, in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = repl.ReplaceKnown(s, "")
	}
	return out
}
