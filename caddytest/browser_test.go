//go:build linux

package caddytest

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser tests run the demo page in headless Chromium from Debian's
// packages. They run in a network namespace of their own that has only a
// loopback interface, so Chromium's ICE gathers loopback candidates only
// and no call can reach another address: the test re-executes its own
// binary inside `ip netns exec`, where TestMain starts a fresh Caddy.

const (
	chromiumPath   = "/usr/bin/chromium"
	inNetnsEnv     = "CADDYWEBRTC_IN_NETNS"
	skipBrowserEnv = "CADDYWEBRTC_SKIP_BROWSER"
	browserWait    = 2 * time.Minute
	pages          = 6
	// A phone's screen, for the layout check.
	phoneWidth, phoneHeight = 390, 844
)

// browserGlobals: the embedded TURN server on loopback for the relay
// cases, also serving TURNS on the site's own port (every case's HTTPS
// then goes through that listener wrapper too).
const browserGlobals = `	turn {
		realm localhost
		secret browser-secret
		listen udp/127.0.0.1:14790 tcp/127.0.0.1:14790
		tls 127.0.0.1:14791 localhost
		relay_address 127.0.0.1
		allow_peers 127.0.0.1/32
	}
	servers :9443 {
		listener_wrappers {
			turn
		}
	}
`

// siteOrigin is the test site as pages see it.
var siteOrigin = fmt.Sprintf("https://localhost:%d", httpsPort)

// siteWS is the signaling WebSocket at path of the test site, straight to
// Caddy (cutProxy.wsURL goes through a proxy).
func siteWS(path string) string {
	return fmt.Sprintf("wss://localhost:%d%s", httpsPort, path)
}

// browserSite is the demo site as examples/Caddyfile serves it, on the
// test ports, plus routes for the client and resilience cases.
func browserSite(t *testing.T) string {
	return fmt.Sprintf(`
localhost:%[1]d {
	handle /rtc/* {
		webrtc_signaling {
			credentials
		}
	}
	# A route whose welcome carries no iceServers.
	handle /plain/* {
		webrtc_signaling
	}
	# One seat, for room_full.
	handle /single/* {
		webrtc_signaling {
			max_peers 1
		}
	}
	# For pages that connect through a test proxy on another port of this
	# host. /cuts notices a silent peer within seconds, yet later than
	# its pages' own watchdogs do (see cutsUnderCPUPressure).
	handle /proxied/* {
		webrtc_signaling {
			origins %[2]s
		}
	}
	handle /cuts/* {
		webrtc_signaling {
			origins %[2]s
			ping_interval %[4]s
		}
	}
	# WebSocket upgrades refused when the query says nows=1: the client
	# falls back to SSE (<route>/events, <route>/send), which is served.
	handle /fallback/* {
		@nows {
			header Upgrade websocket
			query nows=1
		}
		route {
			respond @nows 403
			webrtc_signaling
		}
	}
	# Room tokens required (browserTokenSecret).
	handle /secure/* {
		webrtc_signaling {
			token_secret %[5]s
		}
	}
	handle /credentials {
		turn_credentials
	}
	# Credentials that expire at once, for the client's refresh.
	handle /shortcredentials {
		turn_credentials {
			ttl 1s
		}
	}
	handle {
		root * %[3]s
		file_server
	}
}
`, httpsPort, siteOrigin, demoRoot(t), cutsServerPing, browserTokenSecret)
}

// demoRoot is the demo site's directory.
func demoRoot(t *testing.T) string {
	root, err := filepath.Abs("../examples/site")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// demoURL is the demo page joining room with the fake camera at its
// cheapest, plus extra query parameters.
func demoURL(room string, extra url.Values) string {
	return demoURLAt(siteOrigin, room, extra)
}

// demoURLAt is demoURL on the site at origin.
func demoURLAt(origin, room string, extra url.Values) string {
	q := url.Values{"room": {room}, "quality": {"test"}}
	for k, v := range extra {
		q[k] = v
	}
	return origin + "/?" + q.Encode()
}

// audioOnly: pages of cases that check connectivity, not video, send
// audio only, which costs a fraction of it.
var audioOnly = url.Values{"video": {"0"}}

// with returns a copy of v with more parameters.
func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = vs
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

func TestBrowser(t *testing.T) {
	if os.Getenv(skipBrowserEnv) == "1" {
		t.Skipf("%s=1", skipBrowserEnv)
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("browser tests need Debian's chromium at %s (apt-get install -y chromium; .ci/run does), or %s=1 to skip them", chromiumPath, skipBrowserEnv)
	}
	if os.Getenv(inNetnsEnv) == "" {
		runInNetns(t)
		return
	}
	browserCall(t)
}

// runInNetns runs TestBrowser again in a new network namespace with only
// loopback, and reports its output.
func runInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("browser tests create a network namespace and need root (or %s=1 to skip them)", skipBrowserEnv)
	}
	ns := fmt.Sprintf("caddywebrtc-e2e-%d", os.Getpid())
	ip := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up")
	// A default route, over loopback from 127.0.0.1: Firefox gathers ICE
	// candidates only on the source address of its default route (it does
	// not count the fake camera of the test pages as one the user granted,
	// which would lift that), so without one it gathers none. Chromium
	// gathers on every interface, and loopback is still the only one.
	ip("-n", ns, "route", "add", "default", "dev", "lo", "src", "127.0.0.1")

	outDir := screenshotDir(t)
	args := []string{"netns", "exec", ns, os.Args[0], "-test.run", childRunPattern(), "-test.v", "-test.count", "1", "-test.timeout", "15m"}
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1", "TEST_OUTPUT_DIR="+outDir)
	out, err := cmd.CombinedOutput()
	passed := err == nil && strings.Contains(string(out), "--- PASS: TestBrowser")
	for _, line := range strings.Split(string(out), "\n") {
		// Caddy's JSON logs are noise here, and so are the TURN server's
		// logs of connections cut when the test replaces it, unless the
		// run failed.
		if !strings.HasPrefix(line, "{") && (!passed || isTestOutput(line)) {
			t.Log(line)
		}
	}
	if err != nil {
		t.Fatalf("browser tests in network namespace %s: %v", ns, err)
	}
	if !passed {
		t.Fatal("the browser tests did not report a pass")
	}
}

// childRunPattern runs TestBrowser in the namespace, and only the cases
// that -run names (go test -run 'TestBrowser/reload' runs just those).
func childRunPattern() string {
	const all = "^TestBrowser$"
	f := flag.Lookup("test.run")
	if f == nil {
		return all
	}
	if _, cases, ok := strings.Cut(f.Value.String(), "/"); ok {
		return all + "/" + cases
	}
	return all
}

// isTestOutput tells the testing package's own lines (results and t.Log
// output of the browser test files) from what the server under test logs.
func isTestOutput(line string) bool {
	trimmed := strings.TrimLeft(line, " ")
	for _, prefix := range []string{"=== ", "--- ", "PASS", "FAIL", "ok ", "browser_"} {
		if strings.HasPrefix(trimmed, prefix) {
			return true
		}
	}
	return false
}

// browserCall runs the browser cases, in order, against one Caddy, one
// Chromium and, for the cases that mix browsers, one Firefox, inside the
// network namespace.
func browserCall(t *testing.T) {
	loadConfig(t, "text/caddyfile", withGlobals(browserGlobals, browserSite(t)), false)
	b := browser(t)
	run := func(name string, f func(t *testing.T, b *chromium)) {
		t.Run(name, func(t *testing.T) {
			measure(t, b)
			f(t, b)
		})
	}
	run("client API", clientCases)
	run("ICE restarts", iceRestarts)
	run("room tokens", roomTokens)
	run("six pages mesh", sixPagesMesh)
	run("relay over TURNS", relayOverTURNS)
	run("relay over TURNS on the site's port", relayOverSiteTURNS)
	run("six pages relay only", sixPagesRelayOnly)
	run("reload in a full room", reloadInFullRoom)
	run("signaling cut under CPU pressure", cutsUnderCPUPressure)
	run("resume after a signaling cut", resumeAfterCut)
	run("SSE fallback", sseFallback)
	run("six pages over two servers on NATS", sixPagesOverTwoServers)

	// Firefox beside Chromium, started when the first of these runs.
	fx := &lazyFirefox{owner: t}
	mixed := func(name string, f func(t *testing.T, b *chromium, fx *firefox)) {
		t.Run(name, func(t *testing.T) {
			x := fx.get(t)
			measure(t, b, x)
			f(t, b, x)
		})
	}
	mixed("firefox and chromium pair", firefoxChromiumPair)
	mixed("firefox and chromium mesh of four", firefoxChromiumMesh)
	mixed("firefox and chromium relay only", firefoxChromiumRelayOnly)
	mixed("firefox page reloaded three times", firefoxReloaded)
	mixed("firefox on SSE with chromium on websocket", firefoxOnSSE)
	mixed("ICE restarts between Firefox and Chromium", mixedRestarts)
}

// clientCases runs every case of testdata/browser/client_cases.js in one
// page that joins no room itself.
func clientCases(t *testing.T, b *chromium) {
	p := openPage(t, b, "client page", siteOrigin+"/")
	names, err := eval[[]string](p, `cases.names`)
	if err != nil || len(names) == 0 {
		t.Fatalf("listing the client cases: %v (%d)", err, len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			p.t = t
			p.check(name, jsCall("cases.run", name))
		})
	}
}

func sixPagesMesh(t *testing.T, b *chromium) {
	ps := openRoom(t, b, "mesh", nil)
	fullMesh(t, ps)
	saveScreenshot(t, ps[0], "six-tiles.png")
	// The same call on a phone-sized screen.
	if err := chromedp.Do(ps[1].ctx, chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	ps[1].waitFor("the phone layout", jsCall("check.fits", phoneWidth))
	saveScreenshot(t, ps[1], "six-tiles-phone.png")

	// A seventh page is told the room is full, through the client API.
	extra := openPage(t, b, "page 7", demoURL("mesh", nil))
	extra.waitFor("the room_full error", jsCall("check.refused", "room_full"))

	// A page that reloads rejoins and reconnects to all others.
	reload(t, ps[2])
	fullMesh(t, ps)
}

func relayOverTURNS(t *testing.T, b *chromium) {
	p := openPage(t, b, "turns page", siteOrigin+"/")
	p.check("a data channel message over TURNS", jsCall("cases.run", "relayOverTURNS"))
}

// relayOverSiteTURNS: the same with turns:localhost:9443 as the only TURN
// URI, the site's own port and hostname.
func relayOverSiteTURNS(t *testing.T, b *chromium) {
	p := openPage(t, b, "site turns page", siteOrigin+"/")
	p.check("a data channel message over TURNS on the site's port", jsCall("cases.run", "relayOverSiteTURNS"))
}

func sixPagesRelayOnly(t *testing.T, b *chromium) {
	ps := openRoom(t, b, "relay", with(audioOnly, "relay", "1"))
	fullMesh(t, ps)
	waitAll(t, ps, "only relay candidates in use", `check.onlyRelay()`)

	// The TURN server is replaced under the call (a new realm needs a new
	// server): relayed paths die, ICE fails, the clients restart ICE, and
	// the pairs renegotiate, both sides at once where both notice (perfect
	// negotiation settles the glare).
	start := time.Now()
	loadConfig(t, "text/caddyfile", withGlobals(strings.Replace(browserGlobals, "realm localhost", "realm restarted.test", 1), browserSite(t)), false)
	ps[0].waitFor("the broken relay to be noticed", `check.someNotConnected()`)
	fullMesh(t, ps)
	waitAll(t, ps, "only relay candidates in use after the ICE restart", `check.onlyRelay()`)
	t.Logf("ICE restarted over the new TURN server within %s", time.Since(start).Round(time.Millisecond))

	// The server drops everyone (the route is removed: close 1001); when
	// it is back, the clients reconnect with backoff (resuming their
	// sessions where the server still holds them, else joining afresh) and
	// the mesh forms again.
	loadConfig(t, "text/caddyfile", withGlobals(browserGlobals, fmt.Sprintf("localhost:%d {\n\trespond 503\n}\n", httpsPort)), false)
	waitAll(t, ps, "the drop to be noticed", `check.offline()`)
	loadConfig(t, "text/caddyfile", withGlobals(browserGlobals, browserSite(t)), false)
	fullMesh(t, ps)
}

// reload reloads a page and waits until it is back in its room, under a
// new id, without a fatal error such as room_full.
func reload(t *testing.T, p *page) {
	t.Helper()
	old := p.id()
	if err := p.tab.reload(); err != nil {
		t.Fatalf("%s: reloading: %v", p.name, err)
	}
	p.waitFor("rejoining after the reload", jsCall("check.joined", old))
}
