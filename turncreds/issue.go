package turncreds

import (
	"crypto/rand"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
)

// ICEServer is one entry of RTCConfiguration.iceServers, so that a list of
// them can be passed as is to new RTCPeerConnection({iceServers}).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Credentials is one issued TURN credential and the servers it is for.
type Credentials struct {
	// Username is "<expiry unix seconds>:<user>"; empty when no secret was
	// available to sign with.
	Username string
	// Password is the HMAC of Username under the signing secret.
	Password string
	// TTL is the configured lifetime of the credential.
	TTL time.Duration
	// Expires is the expiry encoded in Username.
	Expires time.Time
	// TURNURIs are the turn:/turns: URIs the credential is for.
	TURNURIs []string
	// ICEServers holds one {urls: stun...} entry (omitted without STUN
	// URIs), then one {urls: turn..., username, credential} entry (omitted
	// without TURN URIs or without a secret).
	ICEServers []ICEServer
}

// Issue creates a credential for r, valid from now for the configured TTL.
// Config must have been provisioned. The user part comes from the User
// expression evaluated with r's replacer; URIs and secret fall back on the
// TURN app when the config has none of its own.
func (c *Config) Issue(r *http.Request, now time.Time) Credentials {
	return c.IssueFor(r, now, "")
}

// IssueFor is Issue for a user the caller already knows (such as the
// subject of a room token); the config's own User expression still wins.
func (c *Config) IssueFor(r *http.Request, now time.Time, user string) Credentials {
	ttl := time.Duration(c.TTL)
	if ttl <= 0 { // not provisioned; never hand out already-expired credentials
		ttl = DefaultTTL
	}
	// Round to what the username can carry, so Expires matches it exactly.
	expires := time.Unix(now.Add(ttl).Unix(), 0)
	creds := Credentials{TTL: ttl, Expires: expires}

	stun, turn := c.stun, c.turn
	if len(stun)+len(turn) == 0 && c.src != nil {
		stun, turn = c.src.ICEURIs(hostOnly(r.Host))
	}

	secret := ""
	if len(c.secrets) > 0 {
		secret = c.secrets[0]
	} else if c.src != nil {
		// Asked on every request: the app may rotate its secrets.
		if s := c.src.TURNSecrets(); len(s) > 0 {
			secret = s[0]
		}
	}

	if len(stun) > 0 {
		creds.ICEServers = append(creds.ICEServers, ICEServer{URLs: slices.Clone(stun)})
	}
	if len(turn) == 0 || secret == "" {
		return creds
	}
	if c.User != "" || user == "" {
		user = c.user(r)
	}
	creds.Username = Username(expires, truncateUTF8(user, maxUserLen))
	creds.Password = Password(secret, creds.Username)
	countIssued()
	creds.TURNURIs = slices.Clone(turn)
	creds.ICEServers = append(creds.ICEServers, ICEServer{
		URLs:       slices.Clone(turn),
		Username:   creds.Username,
		Credential: creds.Password,
	})
	return creds
}

// user evaluates the User expression for r, or returns a random id.
func (c *Config) user(r *http.Request) string {
	if c.User != "" {
		repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		if !ok {
			repl = caddy.NewReplacer()
		}
		// ReplaceAll: an unset placeholder (anonymous request) must not
		// leak into the username as literal "{http.auth.user.id}".
		if u := repl.ReplaceAll(c.User, ""); u != "" {
			return truncateUTF8(u, maxUserLen)
		}
	}
	return rand.Text() // 128 random bits; unguessable, never collides
}

// maxUserLen keeps the username well under STUN's 513-byte USERNAME limit
// (RFC 8489 14.3) whatever the user placeholder yields.
const maxUserLen = 256

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// hostOnly strips the port from an HTTP Host value, and the brackets from an
// IPv6 literal: "[::1]:443" -> "::1", "example.com:443" -> "example.com".
func hostOnly(host string) string {
	if strings.HasPrefix(host, "[") {
		if end := strings.IndexByte(host, ']'); end > 0 {
			return host[1:end]
		}
		return host
	}
	// More than one colon without brackets can only be a bare IPv6 address.
	if strings.Count(host, ":") == 1 {
		host, _, _ = strings.Cut(host, ":")
	}
	return host
}
