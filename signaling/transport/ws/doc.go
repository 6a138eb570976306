// Package ws is the WebSocket transport of a session: the connection
// (Conn), its role (a session's transport, a refused connection, or a
// tunnel's front), its writer (in batches, or inline on a sender's
// goroutine when the socket takes the bytes at once), its pings on one
// process-wide clock, and its one read side (peerReader, with the frame
// parser it feeds), which either a goroutine of the connection's own or the
// event loop (package evloop, plain TCP on Linux) drives.
//
// The Caddy face (package signaling) upgrades the request (Upgrade),
// admits the peer, attaches the connection to its session and runs it
// (Run); everything after that is this package's and the session's.
//
// It may import: wire, session, transport/tunnel (a connection can be a
// front), evloop. Nothing of Caddy.
package ws
