// Package caddywebrtc plugs WebRTC signaling rooms, TURN REST credentials
// and an embedded STUN/TURN server into Caddy. Build it in with
//
//	xcaddy build --with github.com/caddy-webrtc/caddy-webrtc
//
// This file only registers the modules and Caddyfile directives; the work
// happens in the signaling, turncreds and turnapp packages.
package caddywebrtc

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	// Registers the caddy webrtc-loadtest subcommand.
	_ "github.com/caddy-webrtc/caddy-webrtc/loadtest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/natshub"
	"github.com/caddy-webrtc/caddy-webrtc/turnapp"
	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

func init() {
	caddy.RegisterModule(new(signaling.Handler))
	caddy.RegisterModule(signaling.Admin{})
	caddy.RegisterModule(new(signaling.RoomsAPI))
	caddy.RegisterModule(signaling.MemoryBackend{})
	caddy.RegisterModule(natshub.Backend{})
	caddy.RegisterModule(new(turncreds.Handler))
	caddy.RegisterModule(new(turnapp.App))
	caddy.RegisterModule(new(turnapp.SiteListener))

	httpcaddyfile.RegisterGlobalOption("turn", turnapp.ParseGlobalOption)

	httpcaddyfile.RegisterHandlerDirective("webrtc_signaling", signaling.ParseCaddyfile)
	httpcaddyfile.RegisterHandlerDirective("turn_credentials", turncreds.ParseCaddyfile)
	httpcaddyfile.RegisterHandlerDirective("webrtc_rooms", signaling.ParseRoomsCaddyfile)
	// They answer their own requests; put them ahead of the catch-all
	// handlers a site usually ends with (reverse_proxy, file_server).
	httpcaddyfile.RegisterDirectiveOrder("webrtc_signaling", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterDirectiveOrder("turn_credentials", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterDirectiveOrder("webrtc_rooms", httpcaddyfile.Before, "reverse_proxy")
}
