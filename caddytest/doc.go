// Package caddytest holds the integration tests: they run a real Caddy in
// process with this repository's modules and talk to it over real sockets
// on loopback, with WebSocket clients, pion/webrtc peers and TURN clients.
package caddytest
