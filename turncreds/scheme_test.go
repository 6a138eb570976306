package turncreds

import (
	"errors"
	"testing"
	"time"

	"github.com/pion/turn/v4"
)

func TestUsernamePasswordKnownVector(t *testing.T) {
	// Reference values computed independently (Python hmac/hashlib).
	tests := []struct {
		user, wantName, wantPass string
	}{
		{"alice", "1700000000:alice", "Cd/49soE35ICqcJF/bCTn8Z4OyE="},
		{"", "1700000000", "CWyHi3zCeWqXBir9thl4m+iZPRY="},
	}
	for _, tt := range tests {
		name := Username(time.Unix(1700000000, 0), tt.user)
		if name != tt.wantName {
			t.Errorf("Username(%q) = %q, want %q", tt.user, name, tt.wantName)
		}
		if got := Password("north", name); got != tt.wantPass {
			t.Errorf("Password(%q) = %q, want %q", name, got, tt.wantPass)
		}
	}
}

func TestMatchesPion(t *testing.T) {
	for _, user := range []string{"alice", "bob:with:colons", "ünïcode"} {
		pionName, pionPass, err := turn.GenerateLongTermTURNRESTCredentials("s3cret", user, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		expiry, gotUser, err := ParseUsername(pionName)
		if err != nil {
			t.Fatalf("ParseUsername(%q): %v", pionName, err)
		}
		if gotUser != user {
			t.Errorf("ParseUsername(%q) user = %q, want %q", pionName, gotUser, user)
		}
		if name := Username(expiry, user); name != pionName {
			t.Errorf("Username = %q, pion = %q", name, pionName)
		}
		if pass := Password("s3cret", pionName); pass != pionPass {
			t.Errorf("Password = %q, pion = %q", pass, pionPass)
		}
	}
}

func TestMatchSecret(t *testing.T) {
	now := time.Unix(1700000000, 0)
	name := Username(now.Add(time.Hour), "alice")
	expired := Username(now.Add(-time.Second), "alice")
	secrets := []string{"new", "old"}

	tests := []struct {
		name      string
		user      string
		pass      string
		wantIndex int
		wantErr   error
	}{
		{"current secret", name, Password("new", name), 0, nil},
		{"rotated-out secret still accepted", name, Password("old", name), 1, nil},
		{"unknown secret", name, Password("other", name), -1, ErrBadPassword},
		{"tampered user part", name + "x", Password("new", name), -1, ErrBadPassword},
		{"tampered expiry", Username(now.Add(48*time.Hour), "alice"), Password("new", name), -1, ErrBadPassword},
		{"password not base64", name, "%%%", -1, ErrBadPassword},
		{"expired", expired, Password("new", expired), -1, ErrExpired},
		{"expires exactly now", Username(now, "a"), Password("new", Username(now, "a")), -1, ErrExpired},
		{"malformed: no timestamp", "alice", "x", -1, ErrMalformed},
		{"malformed: empty", "", "x", -1, ErrMalformed},
		{"malformed: negative", "-5:alice", "x", -1, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, err := MatchSecret(secrets, tt.user, tt.pass, now)
			if i != tt.wantIndex || !errors.Is(err, tt.wantErr) {
				t.Errorf("MatchSecret = %d, %v; want %d, %v", i, err, tt.wantIndex, tt.wantErr)
			}
			if verr := Verify(secrets, tt.user, tt.pass, now); !errors.Is(verr, tt.wantErr) {
				t.Errorf("Verify = %v, want %v", verr, tt.wantErr)
			}
		})
	}
}

func TestUserOfAgreesWithParseUsername(t *testing.T) {
	tests := []struct{ username, user string }{
		{"1700000000:alice", "alice"},
		{"1700000000", ""},            // no colon: timestamp only
		{"1700000000:", ""},           // empty user
		{"1700000000:a:b:c", "a:b:c"}, // several colons: only the first splits
		{"alice", ""},                 // not TURN REST: no user part either
		{"", ""},
	}
	for _, tc := range tests {
		if got := UserOf(tc.username); got != tc.user {
			t.Errorf("UserOf(%q) = %q, want %q", tc.username, got, tc.user)
		}
		if _, user, err := ParseUsername(tc.username); err == nil && user != UserOf(tc.username) {
			t.Errorf("ParseUsername(%q) user %q, UserOf %q", tc.username, user, UserOf(tc.username))
		}
	}
}
