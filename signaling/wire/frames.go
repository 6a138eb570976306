package wire

import "encoding/json"

// PeerInfo describes a room member in welcome and peer-joined frames.
// User and Name come from the room token or the user/name options.
type PeerInfo struct {
	ID   string `json:"id"`
	User string `json:"user,omitempty"`
	Name string `json:"name,omitempty"`
}

// ICEServer is one entry of a welcome's iceServers, in the shape of
// RTCConfiguration.iceServers so that a client passes the list as is to
// new RTCPeerConnection({iceServers}). It is turncreds.ICEServer again,
// field for field and tag for tag: declared here so that the wire needs
// neither turncreds nor the Caddy it imports. Package signaling converts
// one into the other, which stops compiling if their fields part.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Welcome is the first frame a peer receives after joining.
type Welcome struct {
	Type       string      `json:"type"`
	ID         string      `json:"id"`
	Room       string      `json:"room"`
	Peers      []PeerInfo  `json:"peers"`
	ICEServers []ICEServer `json:"iceServers,omitempty"`
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
