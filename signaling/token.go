package signaling

import (
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// Room access tokens are HS256 JWTs that an application mints for one user
// and one room; see docs/tokens.md for the format.
const (
	// MaxTokenLen bounds a token before it is parsed, so an oversized query
	// parameter costs no base64 or JSON work. Real tokens are a few hundred
	// bytes.
	MaxTokenLen = 4 << 10
	// TokenLeeway absorbs clock skew between the minting app and Caddy
	// when checking exp and nbf.
	TokenLeeway = 5 * time.Second
	// tokenAlg is the only accepted signing algorithm. Pinning it keeps
	// "none" and algorithm-confusion tokens out, and keeps the app side
	// simple (one HMAC).
	tokenAlg = "HS256"
)

// TokenClaims are the claims of a room access token. Subject (sub) is the
// user id; it and ExpiresAt (exp) are required, NotBefore (nbf) is optional.
type TokenClaims struct {
	// Room is the one room the token grants.
	Room string `json:"room"`
	// Name is an optional display name.
	Name string `json:"name,omitempty"`
	jwt.RegisteredClaims
}

// TokenError is why a token was refused. Its message never contains the
// token, so it is safe to log and to send to the client.
type TokenError struct {
	reason string
	msg    string
}

func (e *TokenError) Error() string { return e.msg }

// Reason is a short stable label, usable as a metrics label: missing,
// malformed, bad_alg, bad_signature, expired, not_yet_valid or wrong_room.
func (e *TokenError) Reason() string { return e.reason }

// The errors Verify returns; compare with errors.Is. Several may share a
// Reason, so that metrics labels stay few while messages stay precise.
var (
	ErrTokenMissing      = &TokenError{"missing", "no room token"}
	ErrTokenTooLong      = &TokenError{"malformed", fmt.Sprintf("room token is longer than %d bytes", MaxTokenLen)}
	ErrTokenMalformed    = &TokenError{"malformed", "room token is not a well-formed JWT"}
	ErrTokenNoExpiry     = &TokenError{"malformed", "room token has no exp claim"}
	ErrTokenNoSubject    = &TokenError{"malformed", "room token has no sub claim"}
	ErrTokenBadAlg       = &TokenError{"bad_alg", "room token is not signed with " + tokenAlg}
	ErrTokenBadSignature = &TokenError{"bad_signature", "room token signature matches no configured secret"}
	ErrTokenExpired      = &TokenError{"expired", "room token has expired"}
	ErrTokenNotYetValid  = &TokenError{"not_yet_valid", "room token is not valid yet (nbf)"}
	ErrTokenWrongRoom    = &TokenError{"wrong_room", "room token is for another room"}
)

// TokenReason returns the Reason of a *TokenError in err's chain, "" for
// nil, and "invalid" for any other error.
func TokenReason(err error) string {
	if err == nil {
		return ""
	}
	var te *TokenError
	if errors.As(err, &te) {
		return te.reason
	}
	return "invalid"
}

// TokenVerifier checks room access tokens against a set of secrets. It is
// immutable, so one verifier may serve all connections concurrently.
type TokenVerifier struct {
	keys jwt.VerificationKeySet
}

// NewTokenVerifier returns a verifier accepting tokens signed with any of
// secrets; several allow rotation (apps sign with the first, old tokens
// signed with the others stay valid until they expire). Empty secrets are
// dropped, because an HMAC with an empty key is forgeable by anyone; a
// verifier left without secrets refuses every token.
func NewTokenVerifier(secrets [][]byte) *TokenVerifier {
	v := &TokenVerifier{}
	for _, s := range secrets {
		if len(s) > 0 {
			// Copied, so a caller reusing its buffers cannot change the keys.
			v.keys.Keys = append(v.keys.Keys, append([]byte(nil), s...))
		}
	}
	return v
}

// Verify checks that token is a valid HS256 token for room at time now,
// and returns its claims. Errors are *TokenError values (see the ErrToken
// variables).
func (v *TokenVerifier) Verify(token, room string, now time.Time) (*TokenClaims, error) {
	claims := new(TokenClaims)
	if err := v.parse(token, claims, now); err != nil {
		return nil, err
	}
	if claims.Subject == "" {
		// The handler identifies the user by sub.
		return nil, ErrTokenNoSubject
	}
	// An empty room claim never matches, even an empty room argument, so a
	// token always names what it grants.
	if claims.Room == "" || claims.Room != room {
		return nil, ErrTokenWrongRoom
	}
	return claims, nil
}

// parse checks token's size, algorithm, signature and times at now, and
// decodes its claims into claims; errors are *TokenError values.
func (v *TokenVerifier) parse(token string, claims jwt.Claims, now time.Time) error {
	switch {
	case token == "":
		return ErrTokenMissing
	case len(token) > MaxTokenLen:
		return ErrTokenTooLong
	}
	tok, err := jwt.NewParser(
		jwt.WithValidMethods([]string{tokenAlg}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(TokenLeeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		// Canonical base64 only, so one token has exactly one spelling.
		jwt.WithStrictDecoding(),
	).ParseWithClaims(token, claims, v.keyFunc)
	if err != nil {
		return tokenErrorFrom(tok, err)
	}
	return nil
}

// newSecretVerifier resolves the placeholders of secrets, as they are
// configured, and returns a verifier of tokens signed with them.
func newSecretVerifier(secrets []string) (*TokenVerifier, error) {
	resolved, err := turncreds.ResolveSecrets(caddy.NewReplacer(), secrets)
	if err != nil {
		return nil, fmt.Errorf("token_secret: %w", err)
	}
	keys := make([][]byte, len(resolved))
	for i, s := range resolved {
		keys[i] = []byte(s)
	}
	return NewTokenVerifier(keys), nil
}

// keyFunc hands the parser every secret; it tries them in turn.
func (v *TokenVerifier) keyFunc(*jwt.Token) (any, error) {
	if len(v.keys.Keys) == 0 {
		// The parser refuses an empty set itself; this says why.
		return nil, ErrTokenBadSignature
	}
	return v.keys, nil
}

// tokenErrorFrom maps the parser's error to ours. The parser's own messages are
// dropped: they can quote decoded token content.
func tokenErrorFrom(tok *jwt.Token, err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrTokenMalformed
	case tok != nil && tok.Header["alg"] != tokenAlg:
		// Covers "none", other known algorithms (refused by
		// WithValidMethods) and unknown or absent ones.
		return ErrTokenBadAlg
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrTokenBadSignature
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ErrTokenNoExpiry
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrTokenNotYetValid
	default:
		return ErrTokenMalformed
	}
}

// MintToken returns a room access token for user sub (display name name,
// may be empty) in room, valid from now for ttl, signed with secret.
func MintToken(secret []byte, room, sub, name string, ttl time.Duration, now time.Time) (string, error) {
	switch {
	case room == "":
		return "", errors.New("minting room token: empty room")
	case sub == "":
		return "", errors.New("minting room token: empty sub (user id)")
	}
	return mint("room", secret, &TokenClaims{Room: room, Name: name, RegisteredClaims: registered(sub, ttl, now)}, ttl)
}

// registered are the claims every token carries: who holds it (sub) and
// its lifetime, from now for ttl.
func registered(sub string, ttl time.Duration, now time.Time) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Subject:   sub,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
}

// mint signs claims of a token of kind (room, admin) with secret, after
// checking what every token needs.
func mint(kind string, secret []byte, claims jwt.Claims, ttl time.Duration) (string, error) {
	switch {
	case len(secret) == 0:
		return "", fmt.Errorf("minting %s token: empty secret", kind)
	case ttl < time.Second:
		// exp has whole-second precision; shorter would expire at once.
		return "", fmt.Errorf("minting %s token: ttl must be at least 1s, got %s", kind, ttl)
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
