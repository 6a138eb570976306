package natshub

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-webrtc/caddy-webrtc/internal/natstest"
)

// testNodeTimeout is short so that dead-server cases finish quickly.
const testNodeTimeout = 3 * time.Second

// startNATS runs an embedded NATS for the test.
func startNATS(t *testing.T) *natstest.Server { return natstest.Run(t) }

var prefixes atomic.Int64

// newHubs opens count hubs (one per "server") named name on the NATS at
// url, sharing a fresh prefix; they are shut down when the test ends.
func newHubs(t *testing.T, url string, count int) []*Hub {
	t.Helper()
	prefix := fmt.Sprint("t", prefixes.Add(1))
	var out []*Hub
	for range count {
		b := &Backend{URLs: []string{url}, Prefix: prefix, NodeTimeout: caddy.Duration(testNodeTimeout)}
		b.setDefaults()
		if err := b.Validate(); err != nil {
			t.Fatal(err)
		}
		h, err := b.OpenHub("default")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.(*Hub))
		t.Cleanup(h.Shutdown)
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
