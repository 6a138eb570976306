//go:build linux

package caddytest

import "testing"

// browserTokenSecret signs the room tokens of the /secure route.
const browserTokenSecret = "browser-room-token-secret-0123456789"

// roomTokens: pages join a route that requires room tokens with tokens
// printed by `caddy webrtc-token` (testdata/browser/token_cases.js).
func roomTokens(t *testing.T, b *chromium) {
	mint := func(sub, name string) string {
		return mintWithCommand(t, "--secret", browserTokenSecret, "--room", "tokens", "--sub", sub, "--name", name, "--ttl", "10m")
	}
	p := openPage(t, b, "token page", siteOrigin+"/")
	p.check("joining with room tokens", jsCall("tokenCase", mint("alice", "Alice"), mint("bob", "Bob")))
}
