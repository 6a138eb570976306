package turnapp

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
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

// UnmarshalCaddyfile sets up the app from the turn global option.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		args := d.RemainingArgs()
		one := func(dst *string) error {
			if len(args) != 1 {
				return d.Errf("%s takes one argument", opt)
			}
			*dst = args[0]
			return nil
		}
		some := func(dst *[]string) error {
			if len(args) == 0 {
				return d.Errf("%s takes at least one argument", opt)
			}
			*dst = append(*dst, args...)
			return nil
		}
		var err error
		switch opt {
		case "realm":
			err = one(&a.Realm)
		case "secret":
			err = some(&a.Secrets)
		case "listen":
			err = some(&a.Listen)
		case "tls":
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("tls takes an address and optionally a hostname")
			}
			a.TLS = &TLSListener{Address: args[0]}
			if len(args) == 2 {
				a.TLS.Hostname = args[1]
			}
		case "public_ip":
			err = one(&a.PublicIP)
		case "relay_address":
			err = one(&a.RelayAddress)
		case "relay_ports":
			if err = one(&a.RelayPorts); err == nil {
				_, _, err = parsePortRange(a.RelayPorts)
			}
		case "deny_peers":
			err = some(&a.DenyPeers)
		case "allow_peers":
			err = some(&a.AllowPeers)
		case "max_allocations_per_user":
			var v string
			if err = one(&v); err == nil {
				a.MaxAllocationsPerUser, err = strconv.Atoi(v)
				if err != nil || a.MaxAllocationsPerUser < 0 {
					return d.Errf("max_allocations_per_user must be a whole number, got %q", v)
				}
			}
		case "max_lifetime":
			var v string
			if err = one(&v); err == nil {
				var dur caddy.Duration
				if dur, err = parseDuration(v); err == nil {
					a.MaxLifetime = dur
				}
			}
		default:
			return d.Errf("unknown turn option %q", opt)
		}
		if err != nil {
			return d.Errf("%s: %v", opt, err)
		}
	}
	return nil
}

func parseDuration(s string) (caddy.Duration, error) {
	d, err := caddy.ParseDuration(s)
	return caddy.Duration(d), err
}
