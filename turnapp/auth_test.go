package turnapp

import (
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

func signedRequest(t *testing.T, username, password string) []byte {
	t.Helper()
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.NewUsername(username), stun.NewRealm("r"), stun.NewNonce("n"),
		stun.NewLongTermIntegrity(username, "r", password))
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

func TestSecretMatcher(t *testing.T) {
	var s server
	s.refusals = newRefusalLog(s.logger)
	s.secrets = newSecretMatcher(s.pol.Load, s.refusals)
	s.allocs = newAllocations()
	s.setPolicy(&policy{secrets: []string{"new", "old"}, logger: zap.NewNop()})
	src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	user := turncreds.Username(time.Now().Add(time.Hour), "u")
	expired := turncreds.Username(time.Now().Add(-time.Second), "u")

	tests := []struct {
		name, username, password string
		accepted                 bool
	}{
		{"first secret", user, turncreds.Password("new", user), true},
		{"rotated-out secret still listed", user, turncreds.Password("old", user), true},
		{"unknown secret", user, turncreds.Password("other", user), false},
		{"expired", expired, turncreds.Password("new", expired), false},
		{"malformed", "u", turncreds.Password("new", "u"), false},
	}
	for _, tc := range tests {
		reject := s.observe(signedRequest(t, tc.username, tc.password), src)
		if tc.accepted != (reject == nil) {
			t.Errorf("%s: rejected %v, want accepted %v", tc.name, reject != nil, tc.accepted)
		}
		// Rejected requests never reach pion's AuthHandler; accepted ones
		// get the key of the secret that signed them.
		key, ok := s.authHandler(tc.username, "r", src)
		if tc.accepted && !ok {
			t.Errorf("%s: AuthHandler refused an accepted request", tc.name)
		}
		if reject != nil {
			var m stun.Message
			m.Raw = reject
			var code stun.ErrorCodeAttribute
			if m.Decode() != nil || code.GetFrom(&m) != nil || code.Code != stun.CodeUnauthorized || m.Type.Class != stun.ClassErrorResponse {
				t.Errorf("%s: rejection is not a 401 error response", tc.name)
			}
		}
		if ok && len(key) == 0 {
			t.Errorf("%s: empty key", tc.name)
		}
	}

	// Removing a secret on reload makes its credentials stop working, even
	// ones seen before.
	s.setPolicy(&policy{secrets: []string{"new"}, logger: zap.NewNop()})
	if _, ok := s.authHandler(user, "r", src); ok {
		t.Error("a remembered match survived the secret's removal")
	}
	if s.observe(signedRequest(t, user, turncreds.Password("old", user)), src) == nil {
		t.Error("credential signed by a removed secret accepted")
	}
}

// A CreatePermission for a denied peer gets 403 with MESSAGE-INTEGRITY
// under the request's credential; one for an allowed peer goes to pion.
func TestDeniedPeerForbidden(t *testing.T) {
	var s server
	s.refusals = newRefusalLog(s.logger)
	s.secrets = newSecretMatcher(s.pol.Load, s.refusals)
	peers, err := newPeerPolicy(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.setPolicy(&policy{secrets: []string{"s"}, peers: peers, logger: zap.NewNop()})
	src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	user := turncreds.Username(time.Now().Add(time.Hour), "u")
	integrity := stun.NewLongTermIntegrity(user, "r", turncreds.Password("s", user))
	request := func(peer string) []byte {
		m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodCreatePermission, stun.ClassRequest),
			peerAddress{IP: net.ParseIP(peer), Port: 9}, stun.NewUsername(user), stun.NewRealm("r"), stun.NewNonce("n"), integrity)
		if err != nil {
			t.Fatal(err)
		}
		return m.Raw
	}
	if reject := s.observe(request("8.8.8.8"), src); reject != nil {
		t.Error("permission to a public peer answered by the filter")
	}
	m := &stun.Message{Raw: s.observe(request("10.0.0.1"), src)}
	var code stun.ErrorCodeAttribute
	if m.Decode() != nil || code.GetFrom(m) != nil || code.Code != stun.CodeForbidden || m.Type != stun.NewType(stun.MethodCreatePermission, stun.ClassErrorResponse) {
		t.Fatalf("denied peer answered %v %v, want a 403 CreatePermission error response", m.Type, code)
	}
	if err := integrity.Check(m); err != nil {
		t.Errorf("403 integrity: %v", err)
	}
}

// peerAddress is an XOR-PEER-ADDRESS attribute.
type peerAddress net.UDPAddr

func (p peerAddress) AddTo(m *stun.Message) error {
	return (&stun.XORMappedAddress{IP: p.IP, Port: p.Port}).AddToAs(m, stun.AttrXORPeerAddress)
}
