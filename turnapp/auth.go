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
// listeners show it every STUN message before pion reads it (observe); it
// remembers which secret's key verifies the message's MESSAGE-INTEGRITY,
// and AuthHandler returns that key. pion still checks the integrity itself,
// so a stale or wrong entry can only refuse a request, never admit one.
type secretMatcher struct {
	policy func() *policy

	mu      sync.Mutex
	matched map[matchKey]matchEntry
	sweeps  int
}

type matchKey struct{ username, realm string }

type matchEntry struct {
	key    []byte
	expiry time.Time
}

func newSecretMatcher(policy func() *policy) *secretMatcher {
	return &secretMatcher{policy: policy, matched: make(map[matchKey]matchEntry)}
}

// observe inspects one STUN message (a decoded copy; raw is untouched). For
// an authenticated request that no configured secret signed, or whose
// credential expired, it returns the 401 response to send instead of
// handing the message to pion (which would answer 400).
func (s *secretMatcher) observe(raw []byte) (reject []byte) {
	if !stun.IsMessage(raw) {
		return nil
	}
	m := &stun.Message{Raw: append([]byte(nil), raw...)}
	if m.Decode() != nil || !m.Contains(stun.AttrMessageIntegrity) || m.Type.Class != stun.ClassRequest {
		return nil
	}
	var user stun.Username
	var realm stun.Realm
	if user.GetFrom(m) != nil || realm.GetFrom(m) != nil {
		return nil // pion answers 400 for these
	}
	username := user.String()
	p := s.policy()
	expiry, _, err := turncreds.ParseUsername(username)
	if err == nil && !time.Now().Before(expiry) {
		err = turncreds.ErrExpired
	}
	if err == nil {
		for _, secret := range p.secrets {
			password := turncreds.Password(secret, username)
			if stun.NewLongTermIntegrity(username, realm.String(), password).Check(m) == nil {
				s.remember(matchKey{username, realm.String()}, turn.GenerateAuthKey(username, realm.String(), password), expiry)
				return nil
			}
		}
		err = turncreds.ErrBadPassword
	}
	p.logger.Info("TURN credential refused", zapUser(username), zapReason(err, ""))
	return unauthorized(m)
}

// unauthorized builds a 401 error response to request m.
func unauthorized(m *stun.Message) []byte {
	resp, err := stun.Build(
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(m.Type.Method, stun.ClassErrorResponse),
		stun.CodeUnauthorized,
	)
	if err != nil {
		return nil
	}
	return resp.Raw
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
func (s *secretMatcher) authHandler(username, realm string, _ net.Addr) ([]byte, bool) {
	p := s.policy()
	expiry, _, err := turncreds.ParseUsername(username)
	if err != nil || !time.Now().Before(expiry) {
		p.logger.Info("TURN credential refused", zapUser(username), zapReason(err, "expired"))
		return nil, false
	}
	s.mu.Lock()
	e, ok := s.matched[matchKey{username, realm}]
	s.mu.Unlock()
	if !ok {
		p.logger.Info("TURN credential refused", zapUser(username), zapReason(nil, "no configured secret signed it"))
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
