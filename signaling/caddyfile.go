package signaling

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

var _ caddyfile.Unmarshaler = (*Handler)(nil)

// ParseCaddyfile builds a Handler from the webrtc_signaling directive.
func ParseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var s Handler
	err := s.UnmarshalCaddyfile(h.Dispenser)
	return &s, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	webrtc_signaling {
//	    room             <placeholder expr>
//	    max_peers        <n>
//	    max_message_size <size>
//	    ping_interval    <duration>
//	    origins          <origin...>
//	    hub              <name>
//	    credentials {
//	        secret <secret...>
//	        ...    # as in turn_credentials
//	    }
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "room":
			if !d.AllArgs(&h.Room) {
				return d.ArgErr()
			}
		case "max_peers":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return d.Errf("max_peers must be a positive integer, got %q", v)
			}
			h.MaxPeers = n
		case "max_message_size":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			n, err := humanize.ParseBytes(v)
			if err != nil {
				return d.Errf("max_message_size %q: %v", v, err)
			}
			h.MaxMessageSize = int64(n)
		case "ping_interval":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("ping_interval %q: %v", v, err)
			}
			h.PingInterval = caddy.Duration(dur)
		case "origins":
			h.Origins = append(h.Origins, d.RemainingArgs()...)
			if len(h.Origins) == 0 {
				return d.ArgErr()
			}
		case "hub":
			if !d.AllArgs(&h.Hub) {
				return d.ArgErr()
			}
		case "credentials":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.Credentials = new(turncreds.Config)
			if err := h.Credentials.ParseBlock(d); err != nil {
				return err
			}
		default:
			return d.Errf("unknown webrtc_signaling option %q", d.Val())
		}
	}
	return nil
}
