package wire

// Frame types of protocol v1: the "type" member of every frame.
const (
	TypeWelcome    = "welcome"
	TypePeerJoined = "peer-joined"
	TypePeerLeft   = "peer-left"
	TypeSignal     = "signal"
	TypeBroadcast  = "broadcast"
	TypePing       = "ping"
	TypePong       = "pong"
	TypeError      = "error"
	TypeLeave      = "leave"
	// TypeServerMessage carries data the site's backend sent the room
	// through the rooms API (webrtc_rooms).
	TypeServerMessage = "server-message"
)

// Types lists the frame types, for whoever must tell a known type from
// anything else a peer sends (the metrics' labels, the frame parser's
// interning). Read it, never write it.
var Types = []string{TypeWelcome, TypePeerJoined, TypePeerLeft, TypeSignal, TypeBroadcast, TypePing, TypePong, TypeError, TypeLeave, TypeServerMessage}

// Error codes carried by error frames. client.d.ts's ServerErrorCode lists
// the same codes (a test of signaling/webclient reads this file to check).
const (
	CodeRoomFull        = "room_full"
	CodeBadMessage      = "bad_message"
	CodeUnknownPeer     = "unknown_peer"
	CodeTooLarge        = "too_large"
	CodeForbiddenOrigin = "forbidden_origin"
	CodeMissingRoom     = "missing_room"
	CodeInvalidRoom     = "invalid_room"
	CodeUnavailable     = "unavailable" // the hub is shutting down
	CodeReplaced        = "replaced"    // a newer connection of the same session took the seat
	CodeUnauthorized    = "unauthorized"
	CodeRateLimited     = "rate_limited"
	CodeResumeFailed    = "resume_failed"   // not fatal: a fresh join follows
	CodeUnknownSession  = "unknown_session" // SSE: a POST for no live session (404)
	// CodeUndeliverable: a signal or broadcast could not be passed on to
	// another server (with a clustered hub), so it reached no one there.
	CodeUndeliverable = "undeliverable"
	CodeRoomClosed    = "room_closed" // the rooms API closed the room
	CodeRemoved       = "removed"     // the rooms API removed the peer
)

// WebSocket close codes the server uses. The 4xxx codes mirror the HTTP
// status a plain request would have got (4000 + status), so they are easy to
// remember; 1001 is sent to every peer when Caddy stops.
const (
	CloseNormal          = 1000 // the peer left: leave, a close of 1000, or the resume window ran out
	CloseGoingAway       = 1001 // server stopping
	CloseAbnormal        = 1006 // never sent: a connection lost without a close frame, as its end reports it
	CloseMissingRoom     = 4400 // missing_room, invalid_room
	CloseUnauthorized    = 4401 // unauthorized: no valid room token
	CloseForbiddenOrigin = 4403 // forbidden_origin
	CloseRoomClosed      = 4404 // room_closed: the room is gone
	CloseRemoved         = 4406 // removed: the site's backend removed the peer
	CloseTooSlow         = 4408 // the peer did not read its messages in time
	CloseRoomFull        = 4409 // room_full
	CloseReplaced        = 4410 // replaced: the session continues on a newer connection
	CloseTooLarge        = 4413 // too_large
	CloseRateLimited     = 4429 // over the frame rate for too long
)
