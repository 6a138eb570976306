package wire

import "encoding/json"

// Encode marshals a frame the server built itself. Such values always
// marshal, so a failure is a programming error and panics: callers (the
// handler and every hub) need no error path for it.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("wire: encoding a server frame: " + err.Error())
	}
	return b
}

// Joined announces a new member to the others of its room. It is exported
// so that every hub announces a member in the same bytes.
func Joined(p PeerInfo) []byte {
	return Encode(Outbound{Type: TypePeerJoined, ID: p.ID, User: p.User, Name: p.Name})
}

// Left announces a member's departure to the others of its room; exported
// for every hub, as Joined is.
func Left(id string) []byte {
	return Encode(Outbound{Type: TypePeerLeft, ID: id})
}

// Error builds an error frame with one of the Code constants; exported for
// the handler and for hubs that end a session themselves (replaced).
func Error(code, message string) []byte {
	return Encode(ErrorFrame{Type: TypeError, Code: code, Message: message})
}

// pong is encoded once: a ping is the most frequent frame a server answers.
var pong = Encode(Outbound{Type: TypePong})

// Pong returns the answer to a ping. It is the same slice every time, so
// that answering costs no allocation; callers must not modify it.
func Pong() []byte {
	return pong
}

// ReplacedReason is why a connection was displaced by a newer one of the
// same session: the message of the replaced error frame and the close
// reason, the same whichever transport or hub does the displacing.
const ReplacedReason = "a newer connection of this session took its place"

// Replaced builds the error frame a displaced connection gets last.
func Replaced() []byte {
	return Error(CodeReplaced, ReplacedReason)
}

// Quote renders a peer-supplied string safely inside an error message.
func Quote(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// ServerMessage carries data from the site's backend (the rooms API) to a
// member of a room.
func ServerMessage(data json.RawMessage) []byte {
	return Encode(Outbound{Type: TypeServerMessage, Data: data})
}
