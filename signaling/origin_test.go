package signaling

import (
	"net/http/httptest"
	"testing"
)

func TestOriginPolicy(t *testing.T) {
	tests := []struct {
		name    string
		origins []string
		host    string
		origin  string
		want    bool
	}{
		{"no header", nil, "a.test", "", true},
		{"same host", nil, "a.test", "https://a.test", true},
		{"same host and port", nil, "a.test:8443", "https://a.test:8443", true},
		{"other port", nil, "a.test:8443", "https://a.test", false},
		{"other host", nil, "a.test", "https://b.test", false},
		{"garbage", nil, "a.test", "null", false},
		{"listed", []string{"https://app.test"}, "api.test", "https://app.test", true},
		{"listed case", []string{"https://App.test"}, "api.test", "HTTPS://APP.TEST", true},
		{"list excludes own host", []string{"https://app.test"}, "api.test", "https://api.test", false},
		{"listed scheme matters", []string{"https://app.test"}, "api.test", "http://app.test", false},
		{"star", []string{"*"}, "a.test", "https://anything.test", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseOrigins(tc.origins)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "http://"+tc.host+"/", nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := p.allowed(r); got != tc.want {
				t.Fatalf("allowed = %v, want %v", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"app.test", "https://app.test/path", "https://", "https://a.test?x=1"} {
		if _, err := parseOrigins([]string{bad}); err == nil {
			t.Errorf("origin %q accepted", bad)
		}
	}
}
