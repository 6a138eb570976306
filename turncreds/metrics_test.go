package turncreds

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const issuedMetric = "caddy_webrtc_turn_credentials_issued_total"

// issuedCount reads the counter through reg, as a scrape would.
func issuedCount(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == issuedMetric {
			if f.GetHelp() == "" {
				t.Errorf("%s has no help text", issuedMetric)
			}
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("%s not registered", issuedMetric)
	return 0
}

// Only requests that get a username and password count; every config's
// Config registers the same counter, twice in one registry being fine.
func TestCredentialsIssuedCounter(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for range 2 {
		if err := registerCredsMetrics(reg); err != nil {
			t.Fatalf("registering: %v", err)
		}
	}
	full := newTestHandler(t, Config{Secrets: []string{testSecret}, URIs: []string{"turn:a.example"}, STUN: []string{"stun:a.example"}})
	stunOnly := newTestHandler(t, Config{Secrets: []string{testSecret}, STUN: []string{"stun:a.example"}})
	tests := []struct {
		name   string
		h      *Handler
		method string
		target string
		want   float64
	}{
		{"GET", full, http.MethodGet, "/", 1},
		{"POST service=turn", full, http.MethodPost, "/?service=turn", 1},
		{"stun only: no credential", stunOnly, http.MethodGet, "/", 0},
		{"405", full, http.MethodDelete, "/", 0},
		{"400", full, http.MethodGet, "/?service=stun", 0},
		{"503", stunOnly, http.MethodGet, "/?service=turn", 0},
	}
	for _, tt := range tests {
		before := issuedCount(t, reg)
		_, _ = serveErr(t, tt.h, tt.method, tt.target, "")
		if d := issuedCount(t, reg) - before; d != tt.want {
			t.Errorf("%s: counter changed by %v, want %v", tt.name, d, tt.want)
		}
	}
	// The signaling welcome issues through the same Config.
	before := issuedCount(t, reg)
	full.IssueFor(httptest.NewRequest(http.MethodGet, "/", nil), time.Now(), "ann")
	if d := issuedCount(t, reg) - before; d != 1 {
		t.Errorf("IssueFor: counter changed by %v, want 1", d)
	}
}
