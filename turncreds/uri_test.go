package turncreds

import (
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		in      string
		want    URI
		canon   string
		wantErr string
	}{
		{in: "stun:stun.example.com", want: URI{Scheme: "stun", Host: "stun.example.com"}},
		{in: "stuns:example.com:5349", want: URI{Scheme: "stuns", Host: "example.com", Port: 5349}},
		{in: "turn:192.0.2.1:3478", want: URI{Scheme: "turn", Host: "192.0.2.1", Port: 3478}},
		{in: "turn:[2001:db8::1]:3478?transport=tcp", want: URI{Scheme: "turn", Host: "2001:db8::1", Port: 3478, Transport: "tcp"}},
		{in: "turns:[::1]", want: URI{Scheme: "turns", Host: "::1"}},
		{in: "turn:example.com?transport=udp", want: URI{Scheme: "turn", Host: "example.com", Transport: "udp"}},
		{in: "TURN:example.com?transport=UDP", want: URI{Scheme: "turn", Host: "example.com", Transport: "udp"}, canon: "turn:example.com?transport=udp"},
		{in: "turn:example.com.:65535", want: URI{Scheme: "turn", Host: "example.com.", Port: 65535}},
		{in: "stun:localhost", want: URI{Scheme: "stun", Host: "localhost"}},

		{in: "turn:foo:99999", wantErr: "port out of range"},
		{in: "turn:foo:0", wantErr: "port out of range"},
		{in: "turn:foo:", wantErr: "missing port"},
		{in: "turn:foo:34a", wantErr: "port is not a number"},
		{in: "turn:foo:-1", wantErr: "port is not a number"},
		{in: "turn:", wantErr: "missing host"},
		{in: "turn::3478", wantErr: "missing host"},
		{in: "example.com", wantErr: "missing scheme"},
		{in: "http://example.com", wantErr: "unknown scheme"},
		{in: "turn://example.com:3478", wantErr: `must not contain "//"`},
		{in: "turn:user@example.com", wantErr: "user info"},
		{in: "turn:example.com/path", wantErr: "path"},
		{in: "stun:example.com?transport=udp", wantErr: "STUN URIs take no query"},
		{in: "turn:example.com?transport=sctp", wantErr: "transport must be udp or tcp"},
		{in: "turn:example.com?foo=bar", wantErr: "only the transport"},
		{in: "turn:2001:db8::1", wantErr: "IPv6 addresses must be in brackets"},
		{in: "turn:[2001:db8::1", wantErr: "missing ']'"},
		{in: "turn:[192.0.2.1]", wantErr: "invalid IPv6"},
		{in: "turn:[fe80::1%25eth0]", wantErr: "invalid IPv6"},
		{in: "turn:[::1]x", wantErr: "unexpected characters"},
		{in: "turn:256.1.1.1", wantErr: "invalid IPv4"},
		{in: "turn:1.2.3", wantErr: "invalid IPv4"},
		{in: "turn:-bad.example.com", wantErr: "invalid host name"},
		{in: "turn:bad..example.com", wantErr: "invalid host name"},
		{in: "turn:under_score.example", wantErr: "invalid host name"},
		{in: "turn:{env.TURN_HOST}:3478", wantErr: "invalid host name"},
		{in: "turn:" + strings.Repeat("a.", 127) + "com", wantErr: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURI(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseURI(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURI(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseURI(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			canon := tt.canon
			if canon == "" {
				canon = tt.in
			}
			if s := got.String(); s != canon {
				t.Errorf("String() = %q, want %q", s, canon)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		name     string
		raw      []string
		wantTURN bool
		wantErr  string
	}{
		{"turn list ok", []string{"turn:a.example", "turns:a.example:443?transport=tcp"}, true, ""},
		{"stun list ok", []string{"stun:a.example", "stuns:a.example"}, false, ""},
		{"stun in uris", []string{"turn:a.example", "stun:a.example"}, true, `invalid TURN URI "stun:a.example": stun: URIs belong in stun, not uris`},
		{"turn in stun", []string{"turn:a.example"}, false, `invalid STUN URI "turn:a.example": turn: URIs belong in uris, not stun`},
		{"bad port named", []string{"turn:foo:99999"}, true, `invalid TURN URI "turn:foo:99999": port out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseList(tt.raw, tt.wantTURN)
			if tt.wantErr == "" {
				if err != nil || len(got) != len(tt.raw) {
					t.Fatalf("parseList = %v, %v", got, err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("parseList error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
