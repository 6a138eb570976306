package turnapp

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// allocatedUser allocates over UDP as username and returns the user that
// the "allocation created" log line names, after checking the quota
// counts that same user.
func allocatedUser(t *testing.T, ts *testServer, username string) string {
	t.Helper()
	before := ts.logs.FilterMessage("TURN allocation created").Len()
	relay, err := turnClient(t, "udp", ts.udp, username, turncreds.Password(testSecret, username)).Allocate()
	if err != nil {
		t.Fatalf("%q: %v", username, err)
	}
	t.Cleanup(func() { relay.Close() })
	created := ts.logs.FilterMessage("TURN allocation created").AllUntimed()
	if len(created) != before+1 {
		t.Fatalf("%q: %d allocation lines, want %d", username, len(created), before+1)
	}
	user := stringField(created[before], "user")
	ts.allocs.mu.Lock()
	counted := ts.allocs.perUser[user]
	ts.allocs.mu.Unlock()
	if counted != 1 {
		t.Errorf("%q: the log names user %q, the quota counts %d allocations for it, want 1", username, user, counted)
	}
	return user
}

// The quota and the logs name the same user for every username shape.
func TestQuotaAndLogsAgreeOnUser(t *testing.T) {
	ts := startServer(t, policy{maxPerUser: 1})
	expiry := time.Now().Add(time.Hour)
	bare := turncreds.Username(expiry, "")                                   // no colon
	emptyUser := strconv.FormatInt(expiry.Add(time.Second).Unix(), 10) + ":" // empty user
	colons := turncreds.Username(expiry, "a:b:c")                            // several colons

	if user := allocatedUser(t, ts, bare); user != "" {
		t.Errorf("%q: user %q, want none", bare, user)
	}
	// The same (empty) user with another credential is over its quota of 1.
	_, err := turnClient(t, "udp", ts.udp, emptyUser, turncreds.Password(testSecret, emptyUser)).Allocate()
	var te *stun.TurnError
	if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeAllocQuotaReached {
		t.Errorf("%q after %q: %v, want 486: both have no user", emptyUser, bare, err)
	}
	refused := ts.logs.FilterMessage("TURN allocation quota reached").AllUntimed()
	if len(refused) != 1 || stringField(refused[0], "user") != "" {
		t.Errorf("quota refusal lines %v, want one naming user \"\"", refused)
	}
	if user := allocatedUser(t, ts, colons); user != "a:b:c" {
		t.Errorf("%q: user %q, want a:b:c", colons, user)
	}
}
