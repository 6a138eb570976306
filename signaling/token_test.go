package signaling

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	tokNow    = time.Unix(1_700_000_000, 0)
	tokSecret = []byte("current-secret-0123456789abcdef")
	tokOld    = []byte("previous-secret-0123456789abcdef")
	tokOther  = []byte("somebody-elses-secret-0123456789")
)

// goodTokClaims returns valid claims for room "standup", changed by mod.
func goodTokClaims(mod func(*TokenClaims)) *TokenClaims {
	c := &TokenClaims{
		Room: "standup",
		Name: "Alice",
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   "alice",
			ExpiresAt: jwt.NewNumericDate(tokNow.Add(time.Hour)),
		},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func signTok(t *testing.T, m jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tokB64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// rawTok assembles a token by hand, signed HMAC-SHA256 with key whatever
// the header says, to test headers the jwt package would not produce.
func rawTok(header, payload string, key []byte) string {
	body := tokB64(header) + "." + tokB64(payload)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func tokValidPayload() string {
	return fmt.Sprintf(`{"room":"standup","sub":"alice","exp":%d}`, tokNow.Add(time.Hour).Unix())
}

type tokCase struct {
	name  string
	token string
	room  string
	want  error // nil: accepted
}

func tokenCases(t *testing.T) []tokCase {
	hs := func(c *TokenClaims) string { return signTok(t, jwt.SigningMethodHS256, tokSecret, c) }
	good := hs(goodTokClaims(nil))
	parts := strings.Split(good, ".")
	tampered := tokB64(strings.Replace(tokValidPayload(), "standup", "board", 1))
	return []tokCase{
		{"valid", good, "standup", nil},
		{"valid, rotation secret", signTok(t, jwt.SigningMethodHS256, tokOld, goodTokClaims(nil)), "standup", nil},
		{"hand-made HS256", rawTok(`{"alg":"HS256","typ":"JWT"}`, tokValidPayload(), tokSecret), "standup", nil},
		{"expired within leeway", hs(goodTokClaims(func(c *TokenClaims) { c.ExpiresAt = jwt.NewNumericDate(tokNow.Add(-2 * time.Second)) })), "standup", nil},
		{"nbf in the past", hs(goodTokClaims(func(c *TokenClaims) { c.NotBefore = jwt.NewNumericDate(tokNow.Add(-time.Minute)) })), "standup", nil},
		{"missing", "", "standup", ErrTokenMissing},
		{"too long", strings.Repeat("a", MaxTokenLen+1), "standup", ErrTokenTooLong},
		{"one segment", "garbage", "standup", ErrTokenMalformed},
		{"four segments", good + ".x", "standup", ErrTokenMalformed},
		{"header not base64", "%%%." + parts[1] + "." + parts[2], "standup", ErrTokenMalformed},
		{"claims not JSON", rawTok(`{"alg":"HS256"}`, `not json`, tokSecret), "standup", ErrTokenMalformed},
		{"room not a string", rawTok(`{"alg":"HS256"}`, `{"room":5,"exp":9999999999}`, tokSecret), "standup", ErrTokenMalformed},
		{"signature padded", good + "=", "standup", ErrTokenMalformed},
		{"alg none", signTok(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodTokClaims(nil)), "standup", ErrTokenBadAlg},
		{"alg none with HMAC", rawTok(`{"alg":"none"}`, tokValidPayload(), tokSecret), "standup", ErrTokenBadAlg},
		{"HS384 right secret", signTok(t, jwt.SigningMethodHS384, tokSecret, goodTokClaims(nil)), "standup", ErrTokenBadAlg},
		{"HS512 right secret", signTok(t, jwt.SigningMethodHS512, tokSecret, goodTokClaims(nil)), "standup", ErrTokenBadAlg},
		{"RS256 header", rawTok(`{"alg":"RS256"}`, tokValidPayload(), tokSecret), "standup", ErrTokenBadAlg},
		{"unknown alg", rawTok(`{"alg":"XS256"}`, tokValidPayload(), tokSecret), "standup", ErrTokenBadAlg},
		{"no alg", rawTok(`{"typ":"JWT"}`, tokValidPayload(), tokSecret), "standup", ErrTokenBadAlg},
		{"unknown secret", signTok(t, jwt.SigningMethodHS256, tokOther, goodTokClaims(nil)), "standup", ErrTokenBadSignature},
		{"tampered payload", parts[0] + "." + tampered + "." + parts[2], "board", ErrTokenBadSignature},
		{"signature stripped", parts[0] + "." + parts[1] + ".", "standup", ErrTokenBadSignature},
		{"exp missing", hs(goodTokClaims(func(c *TokenClaims) { c.ExpiresAt = nil })), "standup", ErrTokenNoExpiry},
		{"sub missing", hs(goodTokClaims(func(c *TokenClaims) { c.Subject = "" })), "standup", ErrTokenNoSubject},
		{"expired", hs(goodTokClaims(func(c *TokenClaims) { c.ExpiresAt = jwt.NewNumericDate(tokNow.Add(-time.Minute)) })), "standup", ErrTokenExpired},
		{"nbf in the future", hs(goodTokClaims(func(c *TokenClaims) { c.NotBefore = jwt.NewNumericDate(tokNow.Add(time.Hour)) })), "standup", ErrTokenNotYetValid},
		{"wrong room", good, "retro", ErrTokenWrongRoom},
		{"room differs in case", good, "Standup", ErrTokenWrongRoom},
		{"no room claim", hs(goodTokClaims(func(c *TokenClaims) { c.Room = "" })), "", ErrTokenWrongRoom},
	}
}

func TestTokenVerify(t *testing.T) {
	v := NewTokenVerifier([][]byte{tokSecret, tokOld})
	for _, tc := range tokenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := v.Verify(tc.token, tc.room, tokNow)
			if tc.want == nil {
				checkTokAccepted(t, claims, err, tc.room)
				return
			}
			checkTokRefused(t, claims, err, tc.want, tc.token)
		})
	}
}

func checkTokAccepted(t *testing.T, claims *TokenClaims, err error, room string) {
	t.Helper()
	if err != nil {
		t.Fatalf("refused a valid token: %v", err)
	}
	if claims.Room != room || claims.Subject != "alice" || claims.ExpiresAt == nil {
		t.Fatalf("claims = %+v", claims)
	}
}

func checkTokRefused(t *testing.T, claims *TokenClaims, err, want error, token string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	if claims != nil {
		t.Fatalf("claims returned with an error: %+v", claims)
	}
	// The message may reach logs and clients: it must not carry the
	// token (or a large piece of it) or a secret.
	msg := err.Error()
	for _, p := range append(strings.Split(token, "."), string(tokSecret), string(tokOld)) {
		if len(p) >= 8 && strings.Contains(msg, p) {
			t.Fatalf("error %q leaks %q", msg, p)
		}
	}
}

func TestTokenVerifierWithoutSecrets(t *testing.T) {
	// An HMAC under an empty key is forgeable by anyone, so empty secrets
	// must not verify anything.
	forged := signTok(t, jwt.SigningMethodHS256, []byte{}, goodTokClaims(nil))
	for _, secrets := range [][][]byte{nil, {{}}, {nil}} {
		_, err := NewTokenVerifier(secrets).Verify(forged, "standup", tokNow)
		if !errors.Is(err, ErrTokenBadSignature) {
			t.Errorf("secrets %q: err = %v, want bad_signature", secrets, err)
		}
	}
}

func TestTokenVerifierCopiesSecrets(t *testing.T) {
	buf := append([]byte(nil), tokSecret...)
	v := NewTokenVerifier([][]byte{buf})
	copy(buf, "XXXX")
	tok := signTok(t, jwt.SigningMethodHS256, tokSecret, goodTokClaims(nil))
	if _, err := v.Verify(tok, "standup", tokNow); err != nil {
		t.Fatalf("verifier changed with the caller's buffer: %v", err)
	}
}

func TestTokenReason(t *testing.T) {
	cases := map[error]string{
		nil:                  "",
		errors.New("other"):  "invalid",
		ErrTokenMissing:      "missing",
		ErrTokenTooLong:      "malformed",
		ErrTokenMalformed:    "malformed",
		ErrTokenNoExpiry:     "malformed",
		ErrTokenBadAlg:       "bad_alg",
		ErrTokenBadSignature: "bad_signature",
		ErrTokenExpired:      "expired",
		ErrTokenNotYetValid:  "not_yet_valid",
		ErrTokenWrongRoom:    "wrong_room",
		fmt.Errorf("joining: %w", ErrTokenExpired): "expired",
	}
	for err, want := range cases {
		if got := TokenReason(err); got != want {
			t.Errorf("TokenReason(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestMintTokenRoundTrip(t *testing.T) {
	tok, err := MintToken(tokSecret, "standup", "alice", "Alice Ω", 90*time.Minute, tokNow)
	if err != nil {
		t.Fatal(err)
	}
	if h, _, _ := strings.Cut(tok, "."); h != tokB64(`{"alg":"HS256","typ":"JWT"}`) {
		t.Fatalf("header = %s", h)
	}
	c, err := NewTokenVerifier([][]byte{tokOther, tokSecret}).Verify(tok, "standup", tokNow.Add(89*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.Name != "Alice Ω" || !c.ExpiresAt.Equal(tokNow.Add(90*time.Minute)) {
		t.Fatalf("claims = %+v", c)
	}
	if _, err := NewTokenVerifier([][]byte{tokSecret}).Verify(tok, "standup", tokNow.Add(91*time.Minute)); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("after ttl: err = %v, want expired", err)
	}
}

func TestMintTokenRefuses(t *testing.T) {
	cases := []struct {
		name       string
		secret     []byte
		room, sub  string
		ttl        time.Duration
		wantInText string
	}{
		{"empty secret", nil, "standup", "alice", time.Hour, "secret"},
		{"empty room", tokSecret, "", "alice", time.Hour, "room"},
		{"empty sub", tokSecret, "standup", "", time.Hour, "sub"},
		{"ttl too short", tokSecret, "standup", "alice", 999 * time.Millisecond, "ttl"},
		{"ttl negative", tokSecret, "standup", "alice", -time.Hour, "ttl"},
	}
	for _, tc := range cases {
		tok, err := MintToken(tc.secret, tc.room, tc.sub, "", tc.ttl, tokNow)
		if err == nil || tok != "" || !strings.Contains(err.Error(), tc.wantInText) {
			t.Errorf("%s: token %q, err %v; want an error about %s", tc.name, tok, err, tc.wantInText)
		}
	}
}
