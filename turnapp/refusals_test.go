package turnapp

import (
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	zapobserver "go.uber.org/zap/zaptest/observer"
)

const (
	burst           = 500
	testLogInterval = time.Second
	summaryMsg      = "TURN refusals logged at debug level only"
)

// infoLines counts the info-level refusal lines about client IP ip.
func infoLines(logs *zapobserver.ObservedLogs, ip string) int {
	n := 0
	for _, e := range logs.FilterMessage(msgCredentialRefused).AllUntimed() {
		if host, _, _ := net.SplitHostPort(stringField(e, "client")); e.Level == zapcore.InfoLevel && host == ip {
			n++
		}
	}
	return n
}

// summarized sums the counts of the interval summaries.
func summarized(logs *zapobserver.ObservedLogs) int {
	n := 0
	for _, e := range logs.FilterMessage(summaryMsg).AllUntimed() {
		c, _ := e.ContextMap()["count"].(int64)
		n += int(c)
	}
	return n
}

// A burst of bad credentials from one address writes at most one info
// line per interval; the interval summaries count the rest, and another
// address is still logged.
func TestRefusalBurstLogsAFewLines(t *testing.T) {
	shorten(t, &refusalLogInterval, testLogInterval)
	ts := startServer(t, policy{})
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	start := time.Now()
	for range burst {
		if code := roundTrip(t, pc, ts.udp, badAllocate(t)); code != stun.CodeUnauthorized {
			t.Fatalf("bad credential answered %d, want 401", code)
		}
	}
	elapsed := time.Since(start)
	lines := infoLines(ts.logs, "127.0.0.1")
	if most := int(elapsed/testLogInterval) + 1; lines < 1 || lines > most {
		t.Errorf("%d refusals in %s wrote %d info lines, want 1 to %d", burst, elapsed.Round(time.Millisecond), lines, most)
	}
	if debug := ts.logs.FilterMessage(msgCredentialRefused).FilterField(zap.String("reason", "TURN credential does not match any secret")).Len(); debug != burst {
		t.Errorf("%d refusals at info and debug level, want all %d", debug, burst)
	}
	// Another address (all of 127/8 is loopback) is not held back.
	other, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	roundTrip(t, other, ts.udp, badAllocate(t))
	if infoLines(ts.logs, "127.0.0.2") != 1 {
		t.Error("a refusal from a new address after the burst was not logged at info level")
	}
	eventually(t, "the summaries to count every refusal not logged at info", func() bool {
		return infoLines(ts.logs, "127.0.0.1")+summarized(ts.logs) == burst
	})
	t.Logf("%d refusals in %s: %d info lines, %d summary lines", burst, elapsed.Round(time.Millisecond), lines, ts.logs.FilterMessage(summaryMsg).Len())
}

// Spoofed UDP sources cannot grow the remembered set, nor the info lines,
// past maxRefusalKeys per interval.
func TestRefusalLogBounded(t *testing.T) {
	core, logs := zapobserver.New(zapcore.InfoLevel)
	logger := zap.New(core)
	r := newRefusalLog(func() *zap.Logger { return logger })
	const sources = 3 * maxRefusalKeys
	for i := range sources {
		r.info(msgCredentialRefused, &net.UDPAddr{IP: net.IPv4(198, 51, byte(i>>8), byte(i)), Port: 1})
	}
	r.mu.Lock()
	remembered := len(r.seen)
	r.mu.Unlock()
	if remembered > maxRefusalKeys || logs.Len() != maxRefusalKeys {
		t.Errorf("%d sources: %d remembered, %d info lines; want at most %d of each", sources, remembered, logs.Len(), maxRefusalKeys)
	}
	r.stop()
	if got := summarized(logs); got != sources-maxRefusalKeys {
		t.Errorf("summary counts %d, want %d", got, sources-maxRefusalKeys)
	}
}
