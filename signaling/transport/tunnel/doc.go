// Package tunnel carries a session to a client that resumed on another
// server than the one holding it (the home), over a tunnel of a hub that
// spans servers (hub.Tunnels). The front (Resume, Link, the Front a
// WebSocket or stream becomes) relays the client's frames to the home
// within the limits, so that a flood stops before it crosses, and the
// home's frames back as they are; the home (Accept) makes the tunnel the
// session's transport, so order, replay and limits stay where they were.
//
// It may import: wire, hub, session.
package tunnel
