// Package session is a peer's membership of a room as the signaling server
// keeps it, whatever carries it: its frames numbered in an outbox and kept
// for a resume, what it has processed of the peer's frames, the limits its
// frames are held to (Gate), what a frame of the peer's does (Receive), the
// resume tokens and the registry that finds a session by one, and the
// writer core every transport embeds (WriterCore).
//
// A session is the hub.Peer its hub knows. It knows its hub, its Config
// and its current Transport, nothing of Caddy, HTTP handlers or how a
// transport writes: a transport (package transport/ws, transport/sse,
// transport/tunnel) attaches itself, takes frames under the session's lock
// through its WriterCore, and tells the session when it is lost.
//
// Locks: a session's lock is taken before its transport's (WriterCore.
// LockWith); the session calls its transport's Wake holding its own, and
// never waits on the hub while holding it.
//
// It may import: wire, hub. Nothing above.
package session
