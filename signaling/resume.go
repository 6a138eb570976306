package signaling

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Session tokens let a reconnecting client prove it is the session that
// holds a seat, so that it can take the seat over from its own stale
// connection (a reloaded page, a socket that died before the server
// noticed). A token is "<peer id>.<MAC>": the MAC binds it to the hub,
// room and peer id, so it can be checked without state and is worthless
// anywhere else. It is the seed of session resume, which will add a
// generation so that a used token stops working.

// sessionKey signs session tokens. It lives as long as the process, like
// the rooms the tokens refer to.
var sessionKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails on supported platforms
	return k
}()

// sessionMACLen is the MAC's length in bytes: 128 bits cannot be guessed.
const sessionMACLen = 16

// maxSessionTokenLen bounds what is parsed from a query parameter.
const maxSessionTokenLen = 128

// sessionToken returns the token for peer id in room of hub.
func sessionToken(hub, room, id string) string {
	return id + "." + base64.RawURLEncoding.EncodeToString(sessionMAC(hub, room, id))
}

// sessionTokenPeer returns the peer id a token was issued to, if the token
// is genuine and was issued for this hub and room.
func sessionTokenPeer(token, hub, room string) (id string, ok bool) {
	if len(token) > maxSessionTokenLen {
		return "", false
	}
	id, mac, found := strings.Cut(token, ".")
	if !found || id == "" {
		return "", false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, sessionMAC(hub, room, id)) {
		return "", false
	}
	return id, true
}

func sessionMAC(hub, room, id string) []byte {
	m := hmac.New(sha256.New, sessionKey)
	// NUL cannot occur in hub names, room names (control characters are
	// refused) or ids, so the fields cannot run into each other.
	m.Write([]byte(hub + "\x00" + room + "\x00" + id))
	return m.Sum(nil)[:sessionMACLen]
}
