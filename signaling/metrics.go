package signaling

import (
	"bytes"
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// Metrics on Caddy's /metrics, under caddy_webrtc_signaling_*. The
// collectors are made once per process and registered in every config's
// registry (the way Caddy's own handlers do it), so counters keep counting
// across reloads. They stay process-wide rather than per hub: each config's
// registry takes a collector once, labelled by hub, and a collector per hub
// entry would register again, under the same names, with every hub.
var signalingMetrics = struct {
	once sync.Once
	joins, leaves, slow, rateLimited, bytesIn, bytesOut,
	refusals, framesIn, framesOut, tokenFailures, resumes *prometheus.CounterVec
	hubs prometheus.Collector
}{}

const metricsNS, metricsSub = "caddy", "webrtc_signaling"

// tooManyConnections labels upgrades refused with HTTP 429 in the metrics;
// it never appears in a frame, so it is no wire.Code.
const tooManyConnections = "too_many_connections"

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNS, Subsystem: metricsSub, Name: name, Help: help,
	}, append([]string{"hub"}, labels...))
}

func initSignalingMetrics() {
	m := &signalingMetrics
	m.joins = counterVec("joins_total", "Peers that joined a room.")
	m.leaves = counterVec("leaves_total", "Peers that left a room.")
	m.refusals = counterVec("refusals_total", "Connections refused, by error code.", "code")
	m.framesIn = counterVec("frames_in_total", "Frames received from peers, by type (invalid: unparsable or unknown).", "type")
	m.framesOut = counterVec("frames_out_total", "Frames sent to peers, by type.", "type")
	m.bytesIn = counterVec("bytes_in_total", "Payload bytes received from peers.")
	m.bytesOut = counterVec("bytes_out_total", "Payload bytes sent to peers.")
	m.slow = counterVec("slow_peers_dropped_total", "Peers disconnected for not reading their frames (4408).")
	m.rateLimited = counterVec("rate_limited_frames_total", "Frames dropped for exceeding the frame rate.")
	m.tokenFailures = counterVec("token_failures_total", "Room tokens refused, by reason.", "reason")
	m.resumes = counterVec("resumes_total", "Sessions after a lost connection, by outcome: resumed, failed (resume_failed), expired (the window ran out), overflow (too much buffered while away), refused (the address had connections_per_ip sessions away already).", "result")
	m.hubs = hubCollector{
		peers: prometheus.NewDesc(metricsNS+"_"+metricsSub+"_peers", "Peers in rooms, connected or away, per hub (cluster-wide with a clustered backend).", []string{"hub"}, nil),
		rooms: prometheus.NewDesc(metricsNS+"_"+metricsSub+"_rooms", "Rooms with at least one peer, per hub.", []string{"hub"}, nil),
		localPeers: prometheus.NewDesc(metricsNS+"_"+metricsSub+"_local_peers", "Peers of this server in rooms, connected or away, per hub (all of them but with a clustered backend).",
			[]string{"hub"}, nil),
		away: prometheus.NewDesc(metricsNS+"_"+metricsSub+"_away_peers", "Peers of this server whose connection was lost, kept for a resume, per hub.", []string{"hub"}, nil),
	}
}

// registerSignalingMetrics adds the collectors to a config's registry.
func registerSignalingMetrics(reg *prometheus.Registry) error {
	signalingMetrics.once.Do(initSignalingMetrics)
	if reg == nil {
		return nil
	}
	m := &signalingMetrics
	for _, c := range []prometheus.Collector{m.joins, m.leaves, m.refusals, m.framesIn, m.framesOut,
		m.bytesIn, m.bytesOut, m.slow, m.rateLimited, m.tokenFailures, m.resumes, m.hubs} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}

// hubCollector reports the live hubs' gauges when scraped.
type hubCollector struct{ peers, rooms, localPeers, away *prometheus.Desc }

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.peers
	ch <- c.rooms
	ch <- c.localPeers
	ch <- c.away
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	for name, st := range LiveHubs() {
		ch <- prometheus.MustNewConstMetric(c.rooms, prometheus.GaugeValue, float64(st.Rooms), name)
		ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(st.Peers), name)
		ch <- prometheus.MustNewConstMetric(c.localPeers, prometheus.GaugeValue, float64(st.LocalPeers), name)
	}
	// Only hubs with sessions away have the gauge, as they always had.
	rangeHubs(func(name string, ph pooledHub) {
		if n := ph.state.sessions.Away(); n > 0 {
			ch <- prometheus.MustNewConstMetric(c.away, prometheus.GaugeValue, float64(n), name)
		}
	})
}

// hubMetrics are one hub's counters, resolved once per handler so the
// per-frame path does no label lookups.
type hubMetrics struct {
	hub                                                 string
	joins, leaves, slow, rateLimited, bytesIn, bytesOut prometheus.Counter
	framesIn, framesOut                                 map[string]prometheus.Counter
}

func newHubMetrics(hub string) *hubMetrics {
	signalingMetrics.once.Do(initSignalingMetrics)
	m := &signalingMetrics
	hm := &hubMetrics{
		hub:         hub,
		joins:       m.joins.WithLabelValues(hub),
		leaves:      m.leaves.WithLabelValues(hub),
		slow:        m.slow.WithLabelValues(hub),
		rateLimited: m.rateLimited.WithLabelValues(hub),
		bytesIn:     m.bytesIn.WithLabelValues(hub),
		bytesOut:    m.bytesOut.WithLabelValues(hub),
		framesIn:    make(map[string]prometheus.Counter),
		framesOut:   make(map[string]prometheus.Counter),
	}
	for _, t := range append(wire.Types[:len(wire.Types):len(wire.Types)], "invalid") {
		hm.framesIn[t] = m.framesIn.WithLabelValues(hub, t)
		hm.framesOut[t] = m.framesOut.WithLabelValues(hub, t)
	}
	return hm
}

// Left implements session.Metrics.
func (hm *hubMetrics) Left() { hm.leaves.Inc() }

// SlowDropped implements session.Metrics.
func (hm *hubMetrics) SlowDropped() { hm.slow.Inc() }

// RateLimited implements session.Metrics.
func (hm *hubMetrics) RateLimited() { hm.rateLimited.Inc() }

func (hm *hubMetrics) refused(code string) {
	signalingMetrics.refusals.WithLabelValues(hm.hub, code).Inc()
}

func (hm *hubMetrics) Resume(result string) {
	signalingMetrics.resumes.WithLabelValues(hm.hub, result).Inc()
}

func (hm *hubMetrics) tokenRefused(reason string) {
	signalingMetrics.tokenFailures.WithLabelValues(hm.hub, reason).Inc()
}

func (hm *hubMetrics) FrameIn(typ string, n int) {
	c, ok := hm.framesIn[typ]
	if !ok {
		c = hm.framesIn["invalid"]
	}
	c.Inc()
	hm.bytesIn.Add(float64(n))
}

// frameOut counts a frame the server wrote. Every server frame starts with
// {"type":"<type>", so the type is read off its first bytes.
func (hm *hubMetrics) FrameOut(frame []byte) {
	c := hm.framesOut["invalid"]
	if rest, ok := bytes.CutPrefix(frame, []byte(`{"type":"`)); ok {
		if i := bytes.IndexByte(rest, '"'); i > 0 {
			if known, ok := hm.framesOut[string(rest[:i])]; ok { // no allocation as a map key
				c = known
			}
		}
	}
	c.Inc()
	hm.bytesOut.Add(float64(len(frame)))
}
