package loadtest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
)

// Protocols the engine speaks.
const (
	// ProtocolCaddy is protocol v1 of webrtc_signaling (and of the bare
	// relay in bench/barerelay).
	ProtocolCaddy = "caddy"
	// ProtocolPeerJS is the PeerJS server's protocol, for comparisons.
	ProtocolPeerJS = "peerjs"
)

// peerJSKey is the PeerJS server's default API key.
const peerJSKey = "peerjs"

// frame kinds a protocol reports to the reader.
const (
	kindOther  = iota // membership, pong, heartbeat: nothing to check
	kindJoined        // the handshake answer (welcome, OPEN)
	kindSignal        // a relayed signal carrying our payload
	kindError         // an error frame; code says which
)

// inFrame is what a protocol makes of a received frame.
type inFrame struct {
	kind int
	id   string // our id (kindJoined)
	data []byte // the signal's payload (kindSignal)
	code string // the error code (kindError)
}

// protocol hides how peers join, address and receive signals.
type protocol interface {
	// dialURL is the URL peer slot of room dials. preID is the id the
	// load tester assigns (PeerJS); the caddy protocol ignores it.
	dialURL(base *url.URL, room, preID, token string) string
	// appendSignal appends a signal carrying data to the peer with id to,
	// acknowledging the server frames up to ack where the protocol has
	// acknowledgements (0: none yet).
	appendSignal(b []byte, to string, ack uint64, data []byte) []byte
	// quick returns the payload of a relayed signal without a JSON
	// decoder, or false when b needs parse (see quickSignal).
	quick(b []byte) ([]byte, bool)
	// parse decodes a received frame.
	parse(b []byte) (inFrame, error)
	// heartbeat is a frame to send now and then to stay connected, or nil
	// when the server keeps connections alive itself (WebSocket pings).
	heartbeat() []byte
	// assignsIDs tells whether the client chooses its id (PeerJS).
	assignsIDs() bool
	// name is the protocol's name in summaries.
	name() string
}

func newProtocol(name string) (protocol, error) {
	switch name {
	case ProtocolCaddy, "":
		return caddyProto{}, nil
	case ProtocolPeerJS:
		return peerJSProto{}, nil
	}
	return nil, fmt.Errorf("unknown protocol %q (want %s or %s)", name, ProtocolCaddy, ProtocolPeerJS)
}

// withQuery adds parameters to a copy of base.
func withQuery(base *url.URL, kv ...string) string {
	u := *base
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

type caddyProto struct{}

func (caddyProto) dialURL(base *url.URL, room, _, token string) string {
	return withQuery(base, "room", room, "token", token)
}

func (caddyProto) appendSignal(b []byte, to string, ack uint64, data []byte) []byte {
	mid := `,"data":`
	if ack > 0 { // as client.js sends it: the server then needs no ping to learn it
		mid = `,"ack":` + strconv.FormatUint(ack, 10) + mid
	}
	return appendSignal(b, `{"type":"signal","to":`, to, mid, data)
}

func (caddyProto) quick(b []byte) ([]byte, bool) {
	return quickSignal(b, `"type":"signal"`, `,"data":`)
}

// caddyIn has the fields of every server frame the engine looks at.
type caddyIn struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Code string          `json:"code"`
	Data json.RawMessage `json:"data"`
}

func (caddyProto) parse(b []byte) (inFrame, error) {
	var f caddyIn
	if err := json.Unmarshal(b, &f); err != nil {
		return inFrame{}, err
	}
	switch f.Type {
	case "welcome":
		return inFrame{kind: kindJoined, id: f.ID}, nil
	case "signal":
		return inFrame{kind: kindSignal, data: f.Data}, nil
	case "error":
		return inFrame{kind: kindError, code: f.Code}, nil
	}
	return inFrame{kind: kindOther}, nil
}

func (caddyProto) heartbeat() []byte { return nil }
func (caddyProto) assignsIDs() bool  { return false }

type peerJSProto struct{}

func (peerJSProto) dialURL(base *url.URL, _, preID, token string) string {
	if token == "" {
		// PeerJS wants a token per connection; any string will do.
		token = "t" + preID
	}
	return withQuery(base, "key", peerJSKey, "id", preID, "token", token)
}

func (peerJSProto) appendSignal(b []byte, to string, _ uint64, data []byte) []byte {
	return appendSignal(b, `{"type":"OFFER","dst":`, to, `,"payload":`, data)
}

func (peerJSProto) quick(b []byte) ([]byte, bool) {
	return quickSignal(b, `"type":"OFFER"`, `,"payload":`)
}

// peerJSIn has the fields of the PeerJS server frames the engine looks at.
type peerJSIn struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

func (peerJSProto) parse(b []byte) (inFrame, error) {
	var f peerJSIn
	if err := json.Unmarshal(b, &f); err != nil {
		return inFrame{}, err
	}
	switch f.Type {
	case "OPEN":
		return inFrame{kind: kindJoined}, nil
	case "OFFER":
		return inFrame{kind: kindSignal, data: f.Payload}, nil
	case "ERROR", "ID-TAKEN", "INVALID-KEY", "EXPIRE", "LEAVE":
		// EXPIRE: a queued message to an absent peer was dropped;
		// LEAVE: the addressee is gone. Both mean a signal was lost.
		return inFrame{kind: kindError, code: f.Type}, nil
	}
	return inFrame{kind: kindOther}, nil
}

var peerJSHeartbeat = []byte(`{"type":"HEARTBEAT"}`)

func (peerJSProto) heartbeat() []byte { return peerJSHeartbeat }
func (peerJSProto) assignsIDs() bool  { return true }

// appendSignal concatenates a signal frame without a JSON encoder: it runs
// for every signal, and the load tester shares the machine with the
// server it measures. Ids are server-made or ours, so quoting suffices.
func appendSignal(b []byte, head, to, mid string, data []byte) []byte {
	b = append(b, head...)
	b = strconv.AppendQuote(b, to)
	b = append(b, mid...)
	b = append(b, data...)
	return append(b, '}')
}

func (caddyProto) name() string  { return ProtocolCaddy }
func (peerJSProto) name() string { return ProtocolPeerJS }
