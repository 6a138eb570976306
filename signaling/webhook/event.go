// Package webhook sends a hub's room and peer events to HTTP endpoints,
// signed as the Standard Webhooks specification says
// (https://www.standardwebhooks.com): a bounded queue per endpoint that
// never blocks its caller, in order per room, with retries.
//
// It is free of Caddy and of the rest of this repository: the Caddy face
// (signaling) turns the session's and the hub's events into Events and
// gives them to a Sender per configured endpoint.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event types.
const (
	RoomStarted  = "room_started"
	RoomFinished = "room_finished"
	PeerJoined   = "peer_joined"
	PeerLeft     = "peer_left"
	PeerResumed  = "peer_resumed"
)

// Types lists the event types, the names an endpoint's events option
// accepts.
var Types = []string{RoomStarted, RoomFinished, PeerJoined, PeerLeft, PeerResumed}

// KnownType reports whether t is one of Types.
func KnownType(t string) bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

// Peer is the peer an event is about.
type Peer struct {
	ID   string `json:"id"`
	User string `json:"user,omitempty"`
	Name string `json:"name,omitempty"`
}

// Event is what an endpoint receives, as the JSON body of a POST. ID is
// the same on every attempt to deliver it: receivers dedupe by it.
type Event struct {
	ID     string    `json:"id"`
	Type   string    `json:"type"`
	Hub    string    `json:"hub"`
	Room   string    `json:"room"`
	Peer   *Peer     `json:"peer,omitempty"` // none for room events
	At     time.Time `json:"-"`
	Reason string    `json:"reason,omitempty"` // peer_left's
}

// MarshalJSON writes At as RFC 3339 in UTC with milliseconds.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	return json.Marshal(struct {
		plain
		At string `json:"at"`
	}{plain(e), e.At.UTC().Format("2006-01-02T15:04:05.000Z07:00")})
}

// NewID returns a unique event id: "evt_" and 128 random bits.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	return "evt_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// secretPrefix marks a Standard Webhooks secret: base64 of the key.
const secretPrefix = "whsec_"

// DecodeSecret turns a configured secret into the HMAC key: a
// "whsec_<base64>" secret is the key base64-encoded, as the Standard
// Webhooks libraries take it; any other secret is used as its raw bytes
// (the libraries' "raw" format).
func DecodeSecret(secret string) ([]byte, error) {
	if secret == "" {
		return nil, fmt.Errorf("empty webhook secret")
	}
	rest, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("webhook secret %s...: not base64 after the prefix", secretPrefix)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("empty webhook secret")
	}
	return key, nil
}

// Sign returns the webhook-signature header's value for a message: "v1,"
// and the base64 HMAC-SHA256, under key, of "<id>.<timestamp>.<body>".
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}
