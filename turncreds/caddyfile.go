package turncreds

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
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
func (c *Config) ParseBlock(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch sub := d.Val(); sub {
		case "secret":
			args, err := lineArgs(d, sub)
			if err != nil {
				return err
			}
			c.Secrets = append(c.Secrets, args...)
		case "ttl":
			if c.TTL != 0 {
				return d.Errf("ttl already specified")
			}
			arg, err := oneArg(d, sub)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(arg)
			if err != nil {
				return d.Errf("bad ttl %q: %v", arg, err)
			}
			if dur <= 0 {
				return d.Errf("ttl must be positive, got %q", arg)
			}
			c.TTL = caddy.Duration(dur)
		case "user":
			if c.User != "" {
				return d.Errf("user already specified")
			}
			arg, err := oneArg(d, sub)
			if err != nil {
				return err
			}
			c.User = arg
		case "uris", "stun":
			args, err := lineArgs(d, sub)
			if err != nil {
				return err
			}
			if sub == "uris" {
				c.URIs = append(c.URIs, args...)
			} else {
				c.STUN = append(c.STUN, args...)
			}
		default:
			return d.Errf("unknown subdirective %q (want secret, ttl, user, uris or stun)", sub)
		}
	}
	return nil
}

// lineArgs returns the one or more arguments of subdirective sub.
func lineArgs(d *caddyfile.Dispenser, sub string) ([]string, error) {
	var args []string
	for d.NextArg() {
		args = append(args, d.Val())
	}
	// Left alone, a block here would have its contents read as siblings.
	if d.NextBlock(d.Nesting()) {
		return nil, d.Errf("%s takes no block", sub)
	}
	if len(args) == 0 {
		return nil, d.ArgErr()
	}
	return args, nil
}

// oneArg returns the single argument of subdirective sub.
func oneArg(d *caddyfile.Dispenser, sub string) (string, error) {
	args, err := lineArgs(d, sub)
	if err != nil {
		return "", err
	}
	if len(args) != 1 {
		return "", d.Errf("%s takes exactly one argument", sub)
	}
	return args[0], nil
}
