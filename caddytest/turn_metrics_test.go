package caddytest

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// The TURN metrics tests run a TURN server of their own (its own port, so a
// server no other test shares): no allocation of another test can come or
// go while the deltas are measured.
const (
	metricsTURNPort = "14795"
	metricsTURNAddr = "127.0.0.1:" + metricsTURNPort
	// countedRTO is the retransmission timeout of the test's TURN clients:
	// long enough that a slow answer on a loaded machine is never asked
	// for twice, which would count twice.
	countedRTO = 5 * time.Second
	// metricsWait bounds the wait for a deallocation to show.
	metricsWait = 10 * time.Second
)

const metricsTURNGlobals = `	turn {
		realm localhost
		secret ` + newSecret + `
		listen udp/` + metricsTURNAddr + `
		relay_address 127.0.0.1
		allow_peers 127.0.0.1/32
		max_allocations_per_user 2
	}
`

// metricsTURNSite issues credentials from the turn app. The second route
// gives the config a second turn_credentials, whose metrics registration
// finds the counter already registered.
const metricsTURNSite = `
http://localhost:9080 {
	handle /rtc/credentials {
		turn_credentials {
			user {http.request.uri.query.user}
		}
	}
	handle /other/credentials {
		turn_credentials
	}
}
`

// Series of the TURN metrics, as /metrics exposes them.
const (
	seriesIssued      = "caddy_webrtc_turn_credentials_issued_total"
	seriesAllocations = "caddy_webrtc_turn_allocations"
	seriesCreated     = "caddy_webrtc_turn_allocations_created_total"
	seriesDenied      = "caddy_webrtc_turn_permissions_denied_total"
	seriesQuota       = "caddy_webrtc_turn_quota_refusals_total"
	seriesExpired     = `caddy_webrtc_turn_auth_failures_total{reason="expired"}`
	seriesBadSig      = `caddy_webrtc_turn_auth_failures_total{reason="bad_signature"}`
	seriesMalformed   = `caddy_webrtc_turn_auth_failures_total{reason="malformed_username"}`
)

// turnSeries keeps the caddy_webrtc_turn_* series of a scrape.
func turnSeries(t *testing.T) map[string]float64 {
	t.Helper()
	out := make(map[string]float64)
	for k, v := range scrapeMetrics(t) {
		if strings.HasPrefix(k, "caddy_webrtc_turn_") {
			out[k] = v
		}
	}
	return out
}

// checkTURNDeltas compares how every TURN series changed from before to
// after with want; series not in want must not have changed, and every
// series in want must be exposed.
func checkTURNDeltas(t *testing.T, before, after, want map[string]float64) {
	t.Helper()
	for k := range want {
		if _, ok := after[k]; !ok {
			t.Errorf("%s not exposed", k)
		}
	}
	for k, v := range after {
		if d := v - before[k]; d != want[k] {
			t.Errorf("%s changed by %v, want %v", k, d, want[k])
		}
	}
}

// countedClient connects a pion TURN client over UDP to the metrics test's
// server.
func countedClient(t *testing.T, user, pass string) *turn.Client {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: metricsTURNAddr,
		TURNServerAddr: metricsTURNAddr,
		Conn:           pc,
		Username:       user,
		Password:       pass,
		Realm:          "localhost",
		RTO:            countedRTO,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); pc.Close() })
	return c
}

// Real traffic moves each TURN metric by exactly what happened: credentials
// issued by the route, allocations made and refused by quota, credentials
// refused by reason, peers denied, and a deallocation; a reload keeps the
// counts.
func TestTURNMetrics(t *testing.T) {
	load := func(force bool) {
		loadConfig(t, "text/caddyfile", withGlobals(metricsTURNGlobals, metricsTURNSite), force)
	}
	load(false)
	before := turnSeries(t)

	var ans iceAnswer
	getJSON(t, http.MethodGet, "http://localhost:9080/rtc/credentials?user=mia", &ans)
	if len(ans.ICEServers) != 2 {
		t.Fatalf("credentials: %+v", ans)
	}
	cred := ans.ICEServers[1]
	// Refusals and STUN-only answers issue nothing.
	if resp, _ := request(t, http.MethodDelete, "http://localhost:9080/rtc/credentials"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %s", resp.Status)
	}

	first := countedClient(t, cred.Username, cred.Credential)
	var relays []net.PacketConn
	for i, c := range []*turn.Client{first, countedClient(t, cred.Username, cred.Credential)} {
		relay, err := c.Allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i+1, err)
		}
		relays = append(relays, relay)
	}
	if _, err := countedClient(t, cred.Username, cred.Credential).Allocate(); errorCode(err) != stun.CodeAllocQuotaReached {
		t.Fatalf("third allocation with max_allocations_per_user 2: %v, want 486", err)
	}

	expired := turncreds.Username(time.Now().Add(-time.Minute), "mia")
	fresh := turncreds.Username(time.Now().Add(time.Hour), "mia")
	for _, r := range []struct{ name, user, pass string }{
		{"expired", expired, turncreds.Password(newSecret, expired)},
		{"unknown secret", fresh, turncreds.Password("not-the-secret", fresh)},
		{"malformed username", "mia", turncreds.Password(newSecret, "mia")},
	} {
		if _, err := countedClient(t, r.user, r.pass).Allocate(); errorCode(err) != stun.CodeUnauthorized {
			t.Fatalf("%s: %v, want 401", r.name, err)
		}
	}

	denied := &net.UDPAddr{IP: net.ParseIP("10.0.0.1"), Port: 9}
	if err := first.CreatePermission(denied); errorCode(err) != stun.CodeForbidden {
		t.Fatalf("CreatePermission to %s: %v, want 403", denied, err)
	}
	if code := channelBind(t, first, 0x4000, denied, cred.Username, cred.Credential); code != stun.CodeForbidden {
		t.Fatalf("ChannelBind to %s: error code %d, want 403", denied, code)
	}

	want := map[string]float64{
		seriesIssued: 1, seriesAllocations: 2, seriesCreated: 2, seriesQuota: 1, seriesDenied: 2,
		seriesExpired: 1, seriesBadSig: 1, seriesMalformed: 1,
	}
	checkTURNDeltas(t, before, turnSeries(t), want)

	// A new config registers the same collectors in its new registry: the
	// counts go on, and the allocations stay (same listeners, same server).
	load(true)
	checkTURNDeltas(t, before, turnSeries(t), want)

	for _, relay := range relays {
		if err := relay.Close(); err != nil { // deallocates: Refresh with lifetime 0
			t.Fatal(err)
		}
	}
	eventually(t, metricsWait, "the deallocations to show", func() bool {
		return turnSeries(t)[seriesAllocations] == before[seriesAllocations]
	})
	want[seriesAllocations] = 0
	checkTURNDeltas(t, before, turnSeries(t), want)
}
