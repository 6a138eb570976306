package loadtest

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// tooManyCode is the failure code of an upgrade answered HTTP 429.
const tooManyCode = "http_429"

// hint429 explains the usual cause of HTTP 429 in a load test.
const hint429 = `hint: the server answered 429 Too Many Requests: webrtc_signaling allows 50
connections per client IP by default, and every peer of a load test comes from
one IP. Configure the route under test with generous limits, e.g.
    limits {
        connections_per_ip 100000
        frames_per_second  1000
        burst              1000
    }`

// Summary is the outcome of a Run. Latencies are in milliseconds.
type Summary struct {
	Protocol string  `json:"protocol"`
	URL      string  `json:"url"`
	Peers    int     `json:"peers"`
	RoomSize int     `json:"room_size"`
	Rate     float64 `json:"rate"`
	FlatOut  bool    `json:"flat_out,omitempty"`
	Size     int     `json:"size"`
	// Seconds is how long the senders ran.
	Seconds float64 `json:"seconds"`

	Connected int `json:"connected"`
	Failed    int `json:"failed"`
	// Failures counts peers that never joined, by server error code or
	// http_<status>, dial_error, handshake_error.
	Failures   map[string]int `json:"failures,omitempty"`
	FirstError string         `json:"first_error,omitempty"`
	// Dropped peers lost their connection before the end.
	Dropped int `json:"dropped"`
	// ServerErrors counts error frames received after joining, by code.
	ServerErrors map[string]int `json:"server_errors,omitempty"`

	JoinP50 float64 `json:"join_p50_ms"`
	JoinP99 float64 `json:"join_p99_ms"`

	Sent       uint64  `json:"sent"`
	Delivered  uint64  `json:"delivered"`
	Lost       uint64  `json:"lost"`
	Duplicated uint64  `json:"duplicated"`
	Misordered uint64  `json:"misordered"`
	RelayP50   float64 `json:"relay_p50_ms"`
	RelayP90   float64 `json:"relay_p90_ms"`
	RelayP99   float64 `json:"relay_p99_ms"`
	RelayMax   float64 `json:"relay_max_ms"`
	MsgsPerSec float64 `json:"msgs_per_sec"`

	Server *ServerStats `json:"server,omitempty"`
	Churn  *ChurnStats  `json:"churn,omitempty"`
}

// ServerStats is what the server process cost (with Config.PID).
type ServerStats struct {
	PID int `json:"pid"`
	// RSS before the ramp, after it, at the end of the sending phase, and
	// the largest seen.
	RSSBefore uint64 `json:"rss_before_bytes"`
	RSSRamp   uint64 `json:"rss_after_ramp_bytes"`
	RSSEnd    uint64 `json:"rss_end_bytes"`
	RSSMax    uint64 `json:"rss_max_bytes"`
	// RSSPerPeer is (RSSEnd - RSSBefore) / Connected.
	RSSPerPeer float64 `json:"rss_per_peer_bytes"`
	// CPUPercent is CPU time over wall time in the sending phase, in % of
	// one core; CPUSeconds is all CPU time from before the ramp to the end.
	CPUPercent float64 `json:"cpu_percent"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Error      string  `json:"error,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// summary computes the Summary after the run.
func (r *run) summary(measured time.Duration) Summary {
	s := Summary{
		Protocol: r.proto.name(), URL: r.cfg.URL, Peers: r.cfg.Peers, RoomSize: r.cfg.RoomSize,
		Rate: r.cfg.Rate, FlatOut: r.cfg.FlatOut, Size: r.cfg.Size, Seconds: measured.Seconds(),
		Connected: int(r.connected.Load()), Failed: int(r.failed.Load()), Dropped: int(r.dropped.Load()),
		JoinP50: ms(r.joinHist.Quantile(0.50)), JoinP99: ms(r.joinHist.Quantile(0.99)),
		Sent: r.sent.Load(), Delivered: r.delivered.Load(),
		Duplicated: r.duplicated.Load(), Misordered: r.misordered.Load(),
		RelayP50: ms(r.relayHist.Quantile(0.50)), RelayP90: ms(r.relayHist.Quantile(0.90)),
		RelayP99: ms(r.relayHist.Quantile(0.99)), RelayMax: ms(r.relayHist.Max()),
	}
	if s.Sent > s.Delivered {
		s.Lost = s.Sent - s.Delivered
	}
	if measured > 0 {
		s.MsgsPerSec = float64(s.Delivered) / measured.Seconds()
	}
	r.mu.Lock()
	s.Failures = maps.Clone(r.failures)
	s.ServerErrors = maps.Clone(r.serverErrors)
	s.FirstError = r.firstErr
	r.mu.Unlock()
	s.Server = r.server.stats(s.Connected)
	s.Churn = r.churnStats(measured)
	return s
}

// stats turns the samples into ServerStats.
func (s *serverProbe) stats(connected int) *ServerStats {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &ServerStats{PID: s.pid, RSSMax: s.maxRSS}
	if s.err != nil {
		st.Error = s.err.Error()
	}
	before, ok1 := s.samples["before"]
	ramp, ok2 := s.samples["ramp"]
	end, ok3 := s.samples["end"]
	if !ok1 || !ok2 || !ok3 {
		return st
	}
	st.RSSBefore, st.RSSRamp, st.RSSEnd = before.rss, ramp.rss, end.rss
	if connected > 0 && end.rss > before.rss {
		st.RSSPerPeer = float64(end.rss-before.rss) / float64(connected)
	}
	if wall := end.at.Sub(ramp.at).Seconds(); wall > 0 {
		st.CPUPercent = 100 * (end.cpu - ramp.cpu) / wall
	}
	st.CPUSeconds = end.cpu - before.cpu
	return st
}

// WriteText prints the summary for people.
func (s Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d peers in rooms of %d, %s, %d B, %.1fs\n",
		s.Protocol, s.URL, s.Peers, s.RoomSize, s.load(), s.Size, s.Seconds)
	fmt.Fprintf(&b, "peers      connected %d  failed %d%s  dropped %d\n", s.Connected, s.Failed, codes(s.Failures), s.Dropped)
	if s.FirstError != "" {
		fmt.Fprintf(&b, "           first failure: %s\n", s.FirstError)
	}
	fmt.Fprintf(&b, "join       p50 %.1f ms  p99 %.1f ms\n", s.JoinP50, s.JoinP99)
	fmt.Fprintf(&b, "signals    sent %d  delivered %d  lost %d  duplicated %d  misordered %d%s\n",
		s.Sent, s.Delivered, s.Lost, s.Duplicated, s.Misordered, errCodes(s.ServerErrors))
	fmt.Fprintf(&b, "relay      p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  %.0f msgs/s\n",
		s.RelayP50, s.RelayP90, s.RelayP99, s.RelayMax, s.MsgsPerSec)
	if s.Churn != nil {
		b.WriteString(s.Churn.text())
	}
	if st := s.Server; st != nil {
		fmt.Fprintf(&b, "server     pid %d  rss %s before, %s after ramp, %s at end (max %s), %.0f B/peer  cpu %.0f%% of a core (%.1f s)\n",
			st.PID, mib(st.RSSBefore), mib(st.RSSRamp), mib(st.RSSEnd), mib(st.RSSMax), st.RSSPerPeer, st.CPUPercent, st.CPUSeconds)
		if st.Error != "" {
			fmt.Fprintf(&b, "           reading /proc: %s\n", st.Error)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// load describes the offered load.
func (s Summary) load() string {
	switch {
	case s.FlatOut:
		return "flat out"
	case s.Rate == 0:
		return "idle"
	}
	return fmt.Sprintf("%g signals/s each", s.Rate)
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// codes renders failure counts as " (room_full 3, http_429 2)".
func codes(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func errCodes(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	return "\n           server errors:" + codes(m)
}

// startProgress prints a progress line every ProgressInterval until the
// returned function is called.
func (r *run) startProgress(w io.Writer) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(r.cfg.ProgressInterval)
		defer tick.Stop()
		var lastDelivered uint64
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			d := r.delivered.Load()
			rate := float64(d-lastDelivered) / r.cfg.ProgressInterval.Seconds()
			lastDelivered = d
			fmt.Fprintln(w, r.progressLine(rate))
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func (r *run) progressLine(rate float64) string {
	line := fmt.Sprintf("[%6.1fs] connected %d/%d failed %d dropped %d | sent %d delivered %d (%.0f/s) relay p99 %.1f ms",
		time.Since(r.start).Seconds(), r.connected.Load(), r.cfg.Peers, r.failed.Load(), r.dropped.Load(),
		r.sent.Load(), r.delivered.Load(), rate, ms(r.relayHist.Quantile(0.99)))
	if st, ok := r.server.current(); ok {
		line += fmt.Sprintf(" | server rss %s cpu %.1fs", mib(st.rss), st.cpu)
	}
	return line
}
