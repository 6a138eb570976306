package signaling

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"sync"
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

// maxSessionTokenLen bounds what is parsed from a query parameter.
const maxSessionTokenLen = 128

// sessionToken returns the token for generation gen of peer id in room of hub.
func sessionToken(hub, room, id string, gen uint64) string {
	return id + "." + strconv.FormatUint(gen, 10) + "." + base64.RawURLEncoding.EncodeToString(sessionMAC(hub, room, id, gen))
}

// parseSessionToken returns the peer id and generation a token was issued
// for, if the token is genuine and was issued for this hub and room.
func parseSessionToken(token, hub, room string) (id string, gen uint64, ok bool) {
	if len(token) > maxSessionTokenLen {
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

// wellFormedToken reports whether token has a token's shape (only its
// issuer can tell whether it is genuine): forged garbage is not worth
// asking the other servers about.
func wellFormedToken(token string) bool {
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

// sessions finds this process's live sessions by hub and peer id (ids are
// 128 random bits), for resumes and for frames posted by the SSE transport.
var sessions = sessionRegistry{m: make(map[string]map[string]*session)}

// sessionRegistry holds sessions by hub, then id: keyed by the id the
// session already holds, it allocates no key per peer.
type sessionRegistry struct {
	mu sync.Mutex
	m  map[string]map[string]*session
}

func (r *sessionRegistry) add(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	hub := r.m[s.h.Hub]
	if hub == nil {
		hub = make(map[string]*session)
		r.m[s.h.Hub] = hub
	}
	hub[s.id] = s
}

func (r *sessionRegistry) remove(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	hub := r.m[s.h.Hub]
	if hub[s.id] == s {
		delete(hub, s.id)
	}
	if len(hub) == 0 {
		delete(r.m, s.h.Hub)
	}
}

// lookup returns the session of hub a token names, if the token is genuine
// and, when room is not empty, was issued for that room; and the token's
// generation.
func (r *sessionRegistry) lookup(hub, room, token string) (*session, uint64) {
	id, _, found := strings.Cut(token, ".")
	if !found {
		return nil, 0
	}
	r.mu.Lock()
	s := r.m[hub][id]
	r.mu.Unlock()
	if s == nil || (room != "" && s.room != room) {
		return nil, 0
	}
	if _, gen, ok := parseSessionToken(token, hub, s.room); ok {
		return s, gen
	}
	return nil, 0
}

// current returns the live session of hub whose current token this is:
// the token of a generation a resume moved past names nothing.
func (r *sessionRegistry) current(hub, token string) *session {
	s, gen := r.lookup(hub, "", token)
	if s == nil || gen != s.currentGen() {
		return nil
	}
	return s
}

// LiveSessions is the number of sessions this process holds, present or
// away, over all hubs.
func LiveSessions() int { return sessions.count() }

// count is the number of live sessions, for tests.
func (r *sessionRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, hub := range r.m {
		n += len(hub)
	}
	return n
}

// away counts the sessions waiting for a resume, per hub.
func (r *sessionRegistry) away() map[string]int {
	r.mu.Lock()
	var all []*session
	for _, hub := range r.m {
		for _, s := range hub {
			all = append(all, s)
		}
	}
	r.mu.Unlock()
	n := make(map[string]int)
	for _, s := range all {
		s.mu.Lock()
		if s.tr == nil && !s.isEnded() {
			n[s.h.Hub]++
		}
		s.mu.Unlock()
	}
	return n
}
