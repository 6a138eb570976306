package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
)

// Session tokens let a reconnecting client prove it is the session that
// holds a seat. A token is "<peer id>.<generation>.<MAC>": the MAC binds it
// to the hub, room, peer id and generation, so it is worthless anywhere
// else. With resume on, every resume moves the session to the next
// generation, so a token works once; with resume off, the token of
// generation 0 lets a reloaded page take its stale connection's seat over.

// sessionKey signs session tokens. It lives as long as the process, like
// the sessions the tokens refer to.
var sessionKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read never fails on supported platforms
	return k
}()

// sessionMACLen is the MAC's length in bytes: 128 bits cannot be guessed.
const sessionMACLen = 16

// MaxSessionTokenLen bounds what is parsed from a query parameter.
const MaxSessionTokenLen = 128

// Token returns the token for generation gen of peer id in room of hub.
func Token(hub, room, id string, gen uint64) string {
	return id + "." + strconv.FormatUint(gen, 10) + "." + base64.RawURLEncoding.EncodeToString(sessionMAC(hub, room, id, gen))
}

// ParseToken returns the peer id and generation a token was issued
// for, if the token is genuine and was issued for this hub and room.
func ParseToken(token, hub, room string) (id string, gen uint64, ok bool) {
	if len(token) > MaxSessionTokenLen {
		return "", 0, false
	}
	id, rest, found := strings.Cut(token, ".")
	if !found || id == "" {
		return "", 0, false
	}
	genStr, mac, found := strings.Cut(rest, ".")
	if !found {
		return "", 0, false
	}
	gen, err := strconv.ParseUint(genStr, 10, 64)
	if err != nil {
		return "", 0, false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, sessionMAC(hub, room, id, gen)) {
		return "", 0, false
	}
	return id, gen, true
}

// WellFormedToken reports whether token has a token's shape (only its
// issuer can tell whether it is genuine): forged garbage is not worth
// asking the other servers about.
func WellFormedToken(token string) bool {
	id, rest, ok := strings.Cut(token, ".")
	gen, mac, ok2 := strings.Cut(rest, ".")
	_, err := strconv.ParseUint(gen, 10, 64)
	idLen := base64.RawURLEncoding.EncodedLen(16)
	return ok && ok2 && err == nil && len(id) == idLen && len(mac) == base64.RawURLEncoding.EncodedLen(sessionMACLen)
}

func sessionMAC(hub, room, id string, gen uint64) []byte {
	m := hmac.New(sha256.New, sessionKey)
	// NUL cannot occur in hub names, room names (control characters are
	// refused) or ids, so the fields cannot run into each other.
	m.Write([]byte(hub + "\x00" + room + "\x00" + id + "\x00"))
	m.Write(binary.BigEndian.AppendUint64(nil, gen))
	return m.Sum(nil)[:sessionMACLen]
}
