// Package wire is the signaling protocol's wire format (v1): the names of
// the frame types, the error and close codes, the frames' JSON shapes, and
// the encoding of the frames every hub sends (peer-joined, peer-left,
// error, pong).
//
// It is the bottom layer of the signaling packages: the handler (package
// signaling) and every hub backend (signaling/natshub, ...) build their
// frames from it, so that each announces a member, or refuses a frame, in
// the same bytes. It imports only the standard library and nothing of this
// module, so anything may import it (a hub, a client, a test, a tool)
// without pulling in Caddy. Parsing a peer's frames stays with the handler
// for now: its fast path needs a JSON validator outside the standard
// library.
package wire
