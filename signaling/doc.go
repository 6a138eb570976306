// Package signaling implements WebRTC signaling rooms over WebSocket: peers
// join a room, learn who is there, and relay SDP offers, answers and trickle
// ICE candidates to one another. The wire protocol (v1) is JSON text frames,
// declared in signaling/wire; see the README for the full description.
//
// This package is the Caddy face: the handler module and its Caddyfile,
// admission (origin, room, token, connections_per_ip, resume or a fresh
// session), the SSE and WebSocket endpoints, the hub pool and the hub guest
// module interface, metrics, the admin endpoint and the token command. The
// session, the transports and the hubs are in the packages below it
// (docs/architecture.md).
package signaling
