package turnapp

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// Metrics on Caddy's /metrics, under caddy_webrtc_turn_*. The collectors
// are made once per process and registered in every config's registry (the
// way Caddy's own handlers do it), so counters keep counting across reloads,
// also those that start a new server.
var turnMetrics = struct {
	once                                                 sync.Once
	allocations                                          prometheus.GaugeFunc
	allocationsCreated, permissionsDenied, quotaRefusals prometheus.Counter
	authFailures                                         *prometheus.CounterVec
}{}

const metricsNS, metricsSub = "caddy", "webrtc_turn"

// Reasons of caddy_webrtc_turn_auth_failures_total: a fixed set, so
// clients cannot mint label values.
const (
	// reasonExpired: the expiry in the username has passed.
	reasonExpired = "expired"
	// reasonBadSignature: no configured secret signed the request (a
	// tampered username or password, or an unknown or removed secret).
	reasonBadSignature = "bad_signature"
	// reasonMalformed: the username is not "<expiry>:<user>".
	reasonMalformed = "malformed_username"
)

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: metricsNS, Subsystem: metricsSub, Name: name, Help: help})
}

func initTURNMetrics() {
	m := &turnMetrics
	m.allocations = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metricsNS, Subsystem: metricsSub, Name: "allocations",
		Help: "Live TURN allocations, on all running TURN servers.",
	}, liveAllocations)
	m.allocationsCreated = counter("allocations_created_total", "TURN allocations created.")
	m.permissionsDenied = counter("permissions_denied_total",
		"CreatePermission and ChannelBind requests refused because a peer is on the deny list (403).")
	m.quotaRefusals = counter("quota_refusals_total",
		"TURN allocations refused by max_allocations_per_user (486).")
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNS, Subsystem: metricsSub, Name: "auth_failures_total",
		Help: "Authenticated TURN requests refused (401), by reason: expired, bad_signature, malformed_username.",
	}, []string{"reason"})
	// Every reason shows from the start, at 0, so rates and alerts work
	// before the first failure.
	for _, r := range []string{reasonExpired, reasonBadSignature, reasonMalformed} {
		m.authFailures.WithLabelValues(r)
	}
}

// registerTURNMetrics adds the collectors to a config's registry.
func registerTURNMetrics(reg *prometheus.Registry) error {
	turnMetrics.once.Do(initTURNMetrics)
	if reg == nil {
		return nil
	}
	m := &turnMetrics
	for _, c := range []prometheus.Collector{m.allocations, m.allocationsCreated, m.permissionsDenied, m.quotaRefusals, m.authFailures} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}

// liveAllocations counts the allocations of the servers in the pool when
// scraped, from the events pion reports. Counting per server, rather than
// adding and subtracting on one gauge, keeps the value right when a reload
// replaces a server: pion closes its allocations without reporting them.
func liveAllocations() float64 {
	n := 0
	servers.Range(func(_, v any) bool {
		if s, ok := v.(*server); ok && s.allocs != nil {
			n += s.allocs.count()
		}
		return true
	})
	return float64(n)
}

// The counting functions make sure the collectors exist, so a server
// started without a config (in tests) counts too.

func countAllocationCreated() {
	turnMetrics.once.Do(initTURNMetrics)
	turnMetrics.allocationsCreated.Inc()
}

func countPermissionDenied() {
	turnMetrics.once.Do(initTURNMetrics)
	turnMetrics.permissionsDenied.Inc()
}

func countQuotaRefusal() {
	turnMetrics.once.Do(initTURNMetrics)
	turnMetrics.quotaRefusals.Inc()
}

// countAuthFailure counts a refused credential under reason.
func countAuthFailure(reason string) {
	turnMetrics.once.Do(initTURNMetrics)
	turnMetrics.authFailures.WithLabelValues(reason).Inc()
}

// authFailureReason is the reason label for an error of
// secretMatcher.verify or turncreds.ParseUsername.
func authFailureReason(err error) string {
	switch {
	case errors.Is(err, turncreds.ErrMalformed):
		return reasonMalformed
	case errors.Is(err, turncreds.ErrExpired):
		return reasonExpired
	default:
		return reasonBadSignature
	}
}
