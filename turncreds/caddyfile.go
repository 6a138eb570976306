package turncreds

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyfileopt"
)

// ParseBlock fills c from the block that follows the current token of d:
//
//	{
//		secret <secret...>   # repeatable; the first secret signs
//		ttl    <duration>
//		user   <placeholder expression>
//		uris   <turn: URI...>  # repeatable
//		stun   <stun: URI...>  # repeatable
//	}
//
// Because it starts at the current token, it serves both the turn_credentials
// directive and a credentials sub-block nested in another directive. The
// caller must have consumed the arguments on the current line.
//
// It checks syntax only; Provision and Validate check the values (URIs,
// secrets, the ttl's range), for JSON configs too.
func (c *Config) ParseBlock(d *caddyfile.Dispenser) error {
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var err error
		switch opt {
		case "secret":
			err = appendStrings(d, &c.Secrets)
		case "ttl":
			if err = caddyfileopt.Once(d, seen); err == nil {
				c.TTL, err = caddyfileopt.PositiveDuration(d)
			}
		case "user":
			if err = caddyfileopt.Once(d, seen); err == nil {
				c.User, err = caddyfileopt.String(d)
			}
		case "uris":
			err = appendStrings(d, &c.URIs)
		case "stun":
			err = appendStrings(d, &c.STUN)
		default:
			err = d.Errf("unknown subdirective %q (want secret, ttl, user, uris or stun)", opt)
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

// appendStrings adds the option's arguments to *dst: the list options may
// be repeated, so a long list can span lines.
func appendStrings(d *caddyfile.Dispenser, dst *[]string) error {
	v, err := caddyfileopt.Strings(d)
	*dst = append(*dst, v...)
	return err
}
