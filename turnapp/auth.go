package turnapp

import (
	"net"
	"sync"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// secretMatcher makes several shared secrets work with pion/turn, whose
// AuthHandler must return one key without seeing the message. The
// listeners show the server every STUN message before pion reads it
// (server.observe), which asks verify for the secret whose key verifies
// the message's MESSAGE-INTEGRITY; verify remembers that key, and
// AuthHandler returns it. pion still checks the integrity itself, so a
// stale or wrong entry can only refuse a request, never admit one.
type secretMatcher struct {
	policy   func() *policy
	refusals *refusalLog

	mu      sync.Mutex
	matched map[matchKey]matchEntry
	sweeps  int
}

type matchKey struct{ username, realm string }

type matchEntry struct {
	key    []byte
	expiry time.Time
}

func newSecretMatcher(policy func() *policy, refusals *refusalLog) *secretMatcher {
	return &secretMatcher{policy: policy, refusals: refusals, matched: make(map[matchKey]matchEntry)}
}

// verify returns the key of the configured secret that signed m, an
// authenticated request from username in realm, and remembers it for
// AuthHandler; or why the credential is refused.
func (s *secretMatcher) verify(p *policy, m *stun.Message, username, realm string) ([]byte, error) {
	expiry, _, err := turncreds.ParseUsername(username)
	if err != nil {
		return nil, err
	}
	if !time.Now().Before(expiry) {
		return nil, turncreds.ErrExpired
	}
	for _, secret := range p.secrets {
		key := turn.GenerateAuthKey(username, realm, turncreds.Password(secret, username))
		if stun.MessageIntegrity(key).Check(m) == nil {
			s.remember(matchKey{username, realm}, key, expiry)
			return key, nil
		}
	}
	return nil, turncreds.ErrBadPassword
}

func (s *secretMatcher) remember(k matchKey, key []byte, expiry time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.matched[k] = matchEntry{key: key, expiry: expiry}
	// Usernames carry their expiry; drop expired ones now and then.
	if s.sweeps++; s.sweeps%1024 == 0 {
		now := time.Now()
		for k, e := range s.matched {
			if !now.Before(e.expiry) {
				delete(s.matched, k)
			}
		}
	}
}

// authHandler is the pion AuthHandler: expired credentials and those no
// configured secret signed are refused (pion answers 401).
func (s *secretMatcher) authHandler(username, realm string, src net.Addr) ([]byte, bool) {
	expiry, _, err := turncreds.ParseUsername(username)
	if err != nil || !time.Now().Before(expiry) {
		reason := reasonExpired
		if err != nil {
			reason = authFailureReason(err)
		}
		countAuthFailure(reason)
		s.refusals.info(msgCredentialRefused, src, zapUser(username), zapReason(err, "expired"))
		return nil, false
	}
	s.mu.Lock()
	e, ok := s.matched[matchKey{username, realm}]
	s.mu.Unlock()
	if !ok {
		countAuthFailure(reasonBadSignature)
		s.refusals.info(msgCredentialRefused, src, zapUser(username), zapReason(nil, "no configured secret signed it"))
		return nil, false
	}
	return e.key, true
}

// reset forgets every remembered match.
func (s *secretMatcher) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.matched)
}
