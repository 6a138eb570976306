package signaling

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Admin tokens open the rooms API (webrtc_rooms) to the site's backend:
// HS256 JWTs signed with one of the hub's room-token secrets, like room
// tokens, but carrying "rooms_admin": true and no room. A room token has
// no rooms_admin claim, so it never opens the API; an admin token has no
// room, so it never joins one.

// AdminClaims are the claims of an admin token. ExpiresAt (exp) is
// required; Subject (sub) is optional and only logged.
type AdminClaims struct {
	RoomsAdmin bool `json:"rooms_admin"`
	jwt.RegisteredClaims
}

// ErrTokenNotAdmin refuses a genuine token that does not carry
// "rooms_admin": true, such as a room token.
var ErrTokenNotAdmin = &TokenError{"not_admin", "token does not carry \"rooms_admin\": true"}

// VerifyAdmin checks that token is a valid HS256 admin token at time now.
// Errors are *TokenError values; ErrTokenNotAdmin is the only one for a
// token whose signature the verifier's secrets made.
func (v *TokenVerifier) VerifyAdmin(token string, now time.Time) (*AdminClaims, error) {
	claims := new(AdminClaims)
	if err := v.parse(token, claims, now); err != nil {
		return nil, err
	}
	if !claims.RoomsAdmin {
		return nil, ErrTokenNotAdmin
	}
	return claims, nil
}

// MintAdminToken returns an admin token for the rooms API, valid from now
// for ttl, signed with secret; sub, which may be empty, names who holds it.
func MintAdminToken(secret []byte, sub string, ttl time.Duration, now time.Time) (string, error) {
	return mint("admin", secret, &AdminClaims{RoomsAdmin: true, RegisteredClaims: registered(sub, ttl, now)}, ttl)
}
