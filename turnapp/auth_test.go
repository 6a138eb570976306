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
	s.secrets = newSecretMatcher(s.pol.Load)
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
		reject := s.secrets.observe(signedRequest(t, tc.username, tc.password))
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
	if s.secrets.observe(signedRequest(t, user, turncreds.Password("old", user))) == nil {
		t.Error("credential signed by a removed secret accepted")
	}
}
