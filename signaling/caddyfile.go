package signaling

import (
	"encoding/json"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyfileopt"
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
//	    resume_window    <duration>
//	    origins          <origin...>
//	    hub              <name>
//	    backend          <module> [{ ... }]   # default memory
//	    token_secret     <secret...>
//	    user             <placeholder expr>
//	    name             <placeholder expr>
//	    limits {
//	        frames_per_second  <n>
//	        burst              <n>
//	        connections_per_ip <n>
//	        max_rooms          <n>
//	        max_peers_total    <n>
//	    }
//	    credentials {
//	        secret <secret...>
//	        ...    # as in turn_credentials
//	    }
//	    webhook <url> {    # several allowed
//	        secret  <secret>
//	        events  <name...>  # default: all
//	        timeout <duration> # per attempt, default 10s
//	    }
//	}
//
// Values are checked by Validate, after defaults apply.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if err := caddyfileopt.NoArgs(d); err != nil {
		return err
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "room":
			h.Room, err = caddyfileopt.String(d)
		case "max_peers":
			h.MaxPeers, err = caddyfileopt.PositiveInt(d)
		case "max_message_size":
			h.MaxMessageSize, err = caddyfileopt.Size(d)
		case "ping_interval":
			h.PingInterval, err = caddyfileopt.Duration(d)
		case "resume_window":
			var v caddy.Duration
			v, err = caddyfileopt.Duration(d)
			h.ResumeWindow = &v
		case "origins":
			var v []string
			v, err = caddyfileopt.Strings(d)
			h.Origins = append(h.Origins, v...)
		case "hub":
			h.Hub, err = caddyfileopt.String(d)
		case "backend":
			h.BackendRaw, err = unmarshalBackend(d)
		case "token_secret":
			var v []string
			v, err = caddyfileopt.Strings(d)
			h.TokenSecrets = append(h.TokenSecrets, v...)
		case "user":
			h.User, err = caddyfileopt.String(d)
		case "name":
			h.Name, err = caddyfileopt.String(d)
		case "limits":
			err = h.Limits.unmarshalCaddyfile(d)
		case "credentials":
			if err = caddyfileopt.NoArgs(d); err == nil {
				h.Credentials = new(turncreds.Config)
				err = h.Credentials.ParseBlock(d)
			}
		case "webhook":
			var wh Webhook
			wh, err = unmarshalWebhook(d)
			h.Webhooks = append(h.Webhooks, wh)
		default:
			err = d.Errf("unknown webrtc_signaling option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unmarshalBackend reads `backend <name> [{...}]` into the guest module's
// JSON, with the module's own Caddyfile syntax for the block.
func unmarshalBackend(d *caddyfile.Dispenser) (json.RawMessage, error) {
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	name := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, backendNamespace+"."+name)
	if err != nil {
		return nil, err
	}
	return caddyconfig.JSONModuleObject(unm, "module", name, nil), nil
}

// unmarshalCaddyfile reads a limits block.
func (l *Limits) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileopt.NoArgs(d); err != nil {
		return err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "frames_per_second":
			l.FramesPerSecond, err = caddyfileopt.Float(d)
		case "burst":
			l.Burst, err = caddyfileopt.PositiveInt(d)
		case "connections_per_ip":
			l.ConnectionsPerIP, err = caddyfileopt.PositiveInt(d)
		case "max_rooms":
			l.MaxRooms, err = caddyfileopt.Int(d)
		case "max_peers_total":
			l.MaxPeersTotal, err = caddyfileopt.Int(d)
		default:
			err = d.Errf("unknown limits option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}
