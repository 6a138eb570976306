package turncreds

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics on Caddy's /metrics, under caddy_webrtc_turn_*. The counter is
// made once per process and registered in every config's registry (the way
// Caddy's own handlers do it), so it keeps counting across reloads.
var credsMetrics = struct {
	once   sync.Once
	issued prometheus.Counter
}{}

const metricsNS, metricsSub = "caddy", "webrtc_turn"

func initCredsMetrics() {
	credsMetrics.issued = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metricsNS, Subsystem: metricsSub, Name: "credentials_issued_total",
		Help: "TURN credentials (username and password) issued, by turn_credentials and in signaling welcomes.",
	})
}

// registerCredsMetrics adds the counter to a config's registry. Every
// Config of a config registers it; all but the first find it there.
func registerCredsMetrics(reg *prometheus.Registry) error {
	credsMetrics.once.Do(initCredsMetrics)
	if reg == nil {
		return nil
	}
	if err := reg.Register(credsMetrics.issued); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		return err
	}
	return nil
}

// countIssued counts one credential issued.
func countIssued() {
	credsMetrics.once.Do(initCredsMetrics)
	credsMetrics.issued.Inc()
}
