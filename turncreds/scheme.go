// Package turncreds issues and checks time-limited TURN credentials in the
// TURN REST scheme (draft-uberti-behave-turn-rest): the username is
// "<expiry unix seconds>:<user>" and the password is the base64 HMAC-SHA1 of
// the username under a secret shared with the TURN server. coturn
// (use-auth-secret) and pion/turn (LongTermTURNRESTAuthHandler) accept them.
package turncreds

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the TURN REST scheme specifies.
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Errors returned by Verify and ParseUsername.
var (
	// ErrMalformed means the username is not "<expiry>:<user>".
	ErrMalformed = errors.New("malformed TURN REST username")
	// ErrExpired means the expiry in the username is in the past.
	ErrExpired = errors.New("TURN credential expired")
	// ErrBadPassword means no configured secret produces the given password.
	ErrBadPassword = errors.New("TURN credential does not match any secret")
)

// Username builds the TURN REST username for a credential that expires at
// expiry. An empty user yields just the timestamp, which the scheme allows.
func Username(expiry time.Time, user string) string {
	ts := strconv.FormatInt(expiry.Unix(), 10)
	if user == "" {
		return ts
	}
	return ts + ":" + user
}

// Password returns base64(HMAC-SHA1(secret, username)).
func Password(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username)) // hash writes never fail
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ParseUsername splits a TURN REST username into its expiry and user parts.
func ParseUsername(username string) (expiry time.Time, user string, err error) {
	ts, user := splitUsername(username)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, "", fmt.Errorf("%w: %q", ErrMalformed, username)
	}
	return time.Unix(sec, 0), user, nil
}

// UserOf returns the user part of a TURN REST username, as ParseUsername
// splits it: everything after the first ':', "" when there is none. It is
// the one definition of "user" for quotas and logs, so both always name
// the same user.
func UserOf(username string) string {
	_, user := splitUsername(username)
	return user
}

// splitUsername cuts "<expiry>:<user>" at the first colon; the user part
// may itself contain colons.
func splitUsername(username string) (expiry, user string) {
	expiry, user, _ = strings.Cut(username, ":")
	return expiry, user
}

// MatchSecret returns the index of the first secret under which password is
// the valid credential for username, after checking the expiry against now.
// It is the multi-secret check that secret rotation needs: every listed secret
// is accepted, the first one signs new credentials.
func MatchSecret(secrets []string, username, password string, now time.Time) (int, error) {
	expiry, _, err := ParseUsername(username)
	if err != nil {
		return -1, err
	}
	if !now.Before(expiry) {
		return -1, ErrExpired
	}
	got, err := base64.StdEncoding.DecodeString(password)
	if err != nil {
		return -1, ErrBadPassword
	}
	for i, s := range secrets {
		mac := hmac.New(sha1.New, []byte(s))
		mac.Write([]byte(username))
		if hmac.Equal(mac.Sum(nil), got) {
			return i, nil
		}
	}
	return -1, ErrBadPassword
}

// Verify reports whether password is a valid, unexpired credential for
// username under any of secrets.
func Verify(secrets []string, username, password string, now time.Time) error {
	_, err := MatchSecret(secrets, username, password, now)
	return err
}
