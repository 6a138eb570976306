package turnapp

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// countedRTO is the retransmission timeout of clients whose requests are
// counted: long enough that a slow answer on a loaded machine is never
// asked for twice, which would count twice.
const countedRTO = 5 * time.Second

// Names of the series the TURN metrics expose.
const (
	mAllocations   = "caddy_webrtc_turn_allocations"
	mCreated       = "caddy_webrtc_turn_allocations_created_total"
	mDenied        = "caddy_webrtc_turn_permissions_denied_total"
	mQuota         = "caddy_webrtc_turn_quota_refusals_total"
	mAuthExpired   = `caddy_webrtc_turn_auth_failures_total{reason="expired"}`
	mAuthBadSig    = `caddy_webrtc_turn_auth_failures_total{reason="bad_signature"}`
	mAuthMalformed = `caddy_webrtc_turn_auth_failures_total{reason="malformed_username"}`
)

// gather returns every series of reg as name{label="value",...} -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			if labels := m.GetLabel(); len(labels) > 0 {
				var parts []string
				for _, l := range labels {
					parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				key += "{" + strings.Join(parts, ",") + "}"
			}
			out[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

// metricsRegistry is a registry as a config gets it, with the TURN metrics
// registered the way two configs' apps would: twice.
func metricsRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	for range 2 {
		if err := registerTURNMetrics(reg); err != nil {
			t.Fatalf("registering: %v", err)
		}
	}
	return reg
}

// Every config registers the same collectors: a second registration in one
// registry and one in the next config's registry are fine, and every metric
// shows (each reason at 0 before the first failure) with its help text.
func TestMetricsRegisterAcrossConfigs(t *testing.T) {
	first := metricsRegistry(t)
	next := metricsRegistry(t)
	want := []string{mAllocations, mCreated, mDenied, mQuota, mAuthExpired, mAuthBadSig, mAuthMalformed}
	for _, reg := range []*prometheus.Registry{first, next} {
		got := gather(t, reg)
		var names []string
		for k := range got {
			names = append(names, k)
		}
		slices.Sort(names)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Fatalf("series %v, want %v", names, want)
		}
		families, _ := reg.Gather()
		for _, f := range families {
			if f.GetHelp() == "" {
				t.Errorf("%s has no help text", f.GetName())
			}
		}
	}
}

func TestAuthFailureReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: %q", turncreds.ErrMalformed, "bob"), reasonMalformed},
		{turncreds.ErrExpired, reasonExpired},
		{turncreds.ErrBadPassword, reasonBadSignature},
		{errors.New("anything else"), reasonBadSignature},
	}
	for _, tc := range tests {
		if got := authFailureReason(tc.err); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.want)
		}
	}
}

// pooled puts ts's server in the pool of running servers, as App.Start
// does, and returns a function that takes it out again (ending it).
func pooled(t *testing.T, ts *testServer) (remove func()) {
	t.Helper()
	key := "turn.server.test." + t.Name()
	servers.LoadOrStore(key, ts.server)
	removed := false
	remove = func() {
		if !removed {
			removed = true
			_, _ = servers.Delete(key)
		}
	}
	t.Cleanup(remove)
	return remove
}

// checkDeltas compares the change of each TURN series between two
// gathers with want; a series not in want must not have changed.
func checkDeltas(t *testing.T, before, after map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range after {
		if d := v - before[k]; d != want[k] {
			t.Errorf("%s changed by %v, want %v", k, d, want[k])
		}
	}
}

// The counters follow what the server does with real clients, and the
// live gauge counts the allocations of running servers only: pion ends a
// replaced server's allocations without reporting them.
func TestMetricsCountServerEvents(t *testing.T) {
	peers, err := newPeerPolicy(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, policy{maxPerUser: 1, peers: peers})
	remove := pooled(t, ts)
	reg := metricsRegistry(t)
	before := gather(t, reg)

	allocate := func(username, password string) (net.PacketConn, error) {
		return turnClientRTO(t, "udp", ts.udp, username, password, countedRTO).Allocate()
	}
	var relays []net.PacketConn
	for _, user := range []string{"ann", "ben"} {
		relay, err := allocate(credential(user, 0))
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		relays = append(relays, relay)
	}
	if _, err := allocate(credential("ann", time.Minute)); err == nil {
		t.Fatal("second allocation of ann granted with a quota of 1")
	}
	expired := turncreds.Username(time.Now().Add(-time.Minute), "ann")
	fresh := turncreds.Username(time.Now().Add(time.Hour), "cat")
	for _, c := range []struct{ user, pass string }{
		{expired, turncreds.Password(testSecret, expired)},
		{fresh, turncreds.Password("unknown-secret", fresh)},
		{"cat", turncreds.Password(testSecret, "cat")},
	} {
		if _, err := allocate(c.user, c.pass); err == nil {
			t.Fatalf("%q allocated", c.user)
		}
	}
	denied := &net.UDPAddr{IP: net.ParseIP("10.0.0.1"), Port: 9}
	if err := relays[0].(interface{ CreatePermissions(...net.Addr) error }).CreatePermissions(denied); err == nil {
		t.Fatal("permission to 10.0.0.1 granted")
	} else if te := (*stun.TurnError)(nil); !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeForbidden {
		t.Fatalf("permission to 10.0.0.1: %v, want 403", err)
	}
	checkDeltas(t, before, gather(t, reg), map[string]float64{
		mAllocations: 2, mCreated: 2, mQuota: 1, mDenied: 1,
		mAuthExpired: 1, mAuthBadSig: 1, mAuthMalformed: 1,
	})

	// A deallocation is reported; the end of the server is not.
	if err := relays[0].Close(); err != nil {
		t.Fatal(err)
	}
	live := func() float64 { return gather(t, reg)[mAllocations] - before[mAllocations] }
	eventually(t, "the deallocation to show", func() bool { return live() == 1 })
	remove()
	if n := live(); n != 0 {
		t.Errorf("%v allocations counted after their server ended, want 0", n)
	}
}
