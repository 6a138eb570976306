// Package signaling implements WebRTC signaling rooms over WebSocket: peers
// join a room, learn who is there, and relay SDP offers, answers and trickle
// ICE candidates to one another. The wire protocol (v1) is JSON text frames;
// see the README for the full description.
package signaling

import (
	"encoding/json"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// Message types of protocol v1.
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
)

// Error codes carried by error frames.
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
)

// tooManyConnections labels upgrades refused with HTTP 429 in the metrics;
// it never appears in a frame.
const tooManyConnections = "too_many_connections"

// WebSocket close codes the server uses. The 4xxx codes mirror the HTTP
// status a plain request would have got (4000 + status), so they are easy to
// remember; 1001 is sent to every peer when Caddy stops.
const (
	CloseNormal          = 1000 // the peer left: leave, a close of 1000, or the resume window ran out
	CloseGoingAway       = 1001 // server stopping
	CloseMissingRoom     = 4400 // missing_room, invalid_room
	CloseUnauthorized    = 4401 // unauthorized: no valid room token
	CloseForbiddenOrigin = 4403 // forbidden_origin
	CloseTooSlow         = 4408 // the peer did not read its messages in time
	CloseRoomFull        = 4409 // room_full
	CloseReplaced        = 4410 // replaced: the session continues on a newer connection
	CloseTooLarge        = 4413 // too_large
	CloseRateLimited     = 4429 // over the frame rate for too long
)

// PeerInfo describes a room member in welcome and peer-joined frames.
// User and Name come from the room token or the user/name options.
type PeerInfo struct {
	ID   string `json:"id"`
	User string `json:"user,omitempty"`
	Name string `json:"name,omitempty"`
}

// Welcome is the first frame a peer receives after joining.
type Welcome struct {
	Type       string                `json:"type"`
	ID         string                `json:"id"`
	Room       string                `json:"room"`
	Peers      []PeerInfo            `json:"peers"`
	ICEServers []turncreds.ICEServer `json:"iceServers,omitempty"`
	// Resume is the session token: presented again as ?resume=<token> by
	// a reconnecting client, it takes over the seat of this session's
	// stale connection.
	Resume string `json:"resume,omitempty"`
	// ResumeWindow is how long, in seconds, the session outlives a lost
	// connection; absent when resume is off.
	ResumeWindow int `json:"resume_window,omitempty"`
	// Resumed and Ack answer a resume: the session goes on, and Ack is the
	// last of the peer's seq the server processed.
	Resumed bool    `json:"resumed,omitempty"`
	Ack     *uint64 `json:"ack,omitempty"`
}

// Inbound is a frame sent by a peer. Which fields are required depends on Type.
type Inbound struct {
	// Seq, when set, numbers the peer's frames: a frame whose Seq the
	// server has already processed is a resend and is dropped.
	Seq uint64 `json:"seq,omitempty"`
	// Ack, when set, is the seq of the last server frame the peer
	// processed: the server lets go of the frames it kept up to there for
	// a resume, without a ping to learn it.
	Ack  uint64          `json:"ack,omitempty"`
	Type string          `json:"type"`
	To   string          `json:"to,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Outbound is a relayed or membership frame sent by the server.
type Outbound struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	User string          `json:"user,omitempty"`
	Name string          `json:"name,omitempty"`
	From string          `json:"from,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// ErrorFrame reports a problem with what the peer sent or with its session.
type ErrorFrame struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// encode marshals a frame the server built itself; such values always
// marshal, so a failure is a programming error.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("signaling: encoding a server frame: " + err.Error())
	}
	return b
}

// joinedFrame announces a new member.
func joinedFrame(p PeerInfo) []byte {
	return encode(Outbound{Type: TypePeerJoined, ID: p.ID, User: p.User, Name: p.Name})
}

// leftFrame announces a member's departure.
func leftFrame(id string) []byte {
	return encode(Outbound{Type: TypePeerLeft, ID: id})
}

// errorFrame builds an error frame.
func errorFrame(code, message string) []byte {
	return encode(ErrorFrame{Type: TypeError, Code: code, Message: message})
}

var pongFrame = encode(Outbound{Type: TypePong})
