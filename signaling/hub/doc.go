// Package hub holds the rooms: the Hub interface every backend implements
// (with its optional parts, Tunnels and Posts, for hubs that span
// servers), the errors it returns, and MemoryHub, the in-process backend.
//
// It is the layer between the wire format (signaling/wire, the only
// package of this repository it imports) and what uses rooms: the Caddy
// handler (signaling), the NATS backend (signaling/natshub) and the
// conformance suite (hubtest). It knows nothing of Caddy, WebSockets or
// sessions: a Peer is anything frames can be queued to.
package hub
