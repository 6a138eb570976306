// Command caddy is Caddy with the standard modules plus this repository's
// WebRTC modules, built from this checkout: `go run ./cmd/caddy run
// --config examples/Caddyfile`. Release builds use xcaddy instead.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-webrtc/caddy-webrtc"
)

func main() {
	caddycmd.Main()
}
