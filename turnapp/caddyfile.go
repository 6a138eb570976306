package turnapp

import (
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyfileopt"
)

// ParseGlobalOption reads the turn global option into the turn app:
//
//	turn {
//	    realm        <realm>
//	    secret       <secret...>
//	    listen       <network/address...>   # default udp/:3478 tcp/:3478
//	    tls          <address> [<hostname>]
//	    public_ip    <ip>
//	    relay_address <ip>
//	    relay_ports  <min-max>
//	    deny_peers   <cidr...>
//	    allow_peers  <cidr...>
//	    max_allocations_per_user <n>
//	    max_lifetime <duration>
//	}
func ParseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("turn may be configured only once")
	}
	var a App
	if err := a.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "turn", Value: caddyconfig.JSON(a, nil)}, nil
}

var _ caddyfile.Unmarshaler = (*App)(nil)

// minTLSArgs and maxTLSArgs bound the tls option's arguments: an address,
// then optionally the certificate's hostname.
const minTLSArgs, maxTLSArgs = 1, 2

// UnmarshalCaddyfile sets up the app from the turn global option. It
// checks syntax only; Provision and Validate check the values (addresses,
// port ranges, CIDRs, limits), for JSON configs too.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if err := caddyfileopt.NoArgs(d); err != nil {
		return err
	}
	for d.NextBlock(0) {
		opt := d.Val()
		var err error
		switch opt {
		case "realm":
			a.Realm, err = caddyfileopt.String(d)
		case "secret":
			err = appendStrings(d, &a.Secrets)
		case "listen":
			err = appendStrings(d, &a.Listen)
		case "tls":
			a.TLS, err = parseTLS(d)
		case "public_ip":
			a.PublicIP, err = caddyfileopt.String(d)
		case "relay_address":
			a.RelayAddress, err = caddyfileopt.String(d)
		case "relay_ports":
			a.RelayPorts, err = caddyfileopt.String(d)
		case "deny_peers":
			err = appendStrings(d, &a.DenyPeers)
		case "allow_peers":
			err = appendStrings(d, &a.AllowPeers)
		case "max_allocations_per_user":
			// 0 is "no cap", as in JSON; Validate refuses negatives.
			a.MaxAllocationsPerUser, err = caddyfileopt.Int(d)
		case "max_lifetime":
			a.MaxLifetime, err = caddyfileopt.Duration(d)
		case "receive_buffer":
			a.ReceiveBuffer, err = caddyfileopt.Size(d)
		default:
			err = d.Errf("unknown turn option %q", opt)
		}
		if err == nil {
			err = caddyfileopt.NoBlock(d, opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseTLS reads "tls <address> [<hostname>]".
func parseTLS(d *caddyfile.Dispenser) (*TLSListener, error) {
	args, err := caddyfileopt.Args(d, minTLSArgs, maxTLSArgs)
	if err != nil {
		return nil, err
	}
	l := &TLSListener{Address: args[0]}
	if len(args) == maxTLSArgs {
		l.Hostname = args[1]
	}
	return l, nil
}

// appendStrings adds the option's arguments to *dst: the list options may
// be repeated, so a long list can span lines.
func appendStrings(d *caddyfile.Dispenser, dst *[]string) error {
	v, err := caddyfileopt.Strings(d)
	*dst = append(*dst, v...)
	return err
}
