package turnapp

import (
	"fmt"

	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

// startTLS gives the TURNS listener the certificate Caddy's TLS app
// manages for the hostname (automatic HTTPS, or the internal CA for
// localhost and IPs), renewals included: the listener asks the TLS app's
// certificate cache at every handshake.
func (a *App) startTLS() error {
	// The TLS app is needed here the way the HTTP app needs it, so App
	// (which loads it if the config has none) is right.
	tlsAppIface, err := a.ctx.App("tls")
	if err != nil {
		return fmt.Errorf("turn: loading tls app: %w", err)
	}
	tlsApp := tlsAppIface.(*caddytls.TLS)
	if !tlsApp.HasCertificateForSubject(a.TLS.Hostname) {
		if err := tlsApp.Manage(map[string]struct{}{a.TLS.Hostname: {}}); err != nil {
			return fmt.Errorf("turn: managing a certificate for %s: %w", a.TLS.Hostname, err)
		}
	}
	policies := caddytls.ConnectionPolicies{{
		DefaultSNI: a.TLS.Hostname, // clients that dial an IP send no SNI
		ALPN:       []string{"stun.turn"},
	}}
	if err := policies.Provision(a.ctx); err != nil {
		return fmt.Errorf("turn: tls connection policy: %w", err)
	}
	a.srv.tlsConf.Store(policies.TLSConfig(a.ctx))
	return nil
}
