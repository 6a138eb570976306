package caddytest

import (
	"fmt"
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
)

// browserGlobals: the embedded TURN server on loopback for the relay case.
const browserGlobals = `	turn {
		realm localhost
		secret browser-secret
		listen udp/127.0.0.1:34790 tcp/127.0.0.1:34790
		tls 127.0.0.1:34791 localhost
		relay_address 127.0.0.1
		allow_peers 127.0.0.1/32
	}
`

// browserSite is the demo site as examples/Caddyfile serves it, on the
// test ports, plus routes for the client option cases.
func browserSite(t *testing.T) string {
	root, err := filepath.Abs("../examples/site")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`
localhost:9443 {
	handle /rtc/* {
		webrtc_signaling {
			credentials
		}
	}
	# A route whose welcome carries no iceServers, and a credentials route.
	handle /plain/* {
		webrtc_signaling
	}
	handle /credentials {
		turn_credentials
	}
	handle {
		root * %s
		file_server
	}
}
`, root)
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

	outDir := screenshotDir(t)
	args := []string{"netns", "exec", ns, os.Args[0], "-test.run", "^TestBrowser$", "-test.v", "-test.count", "1", "-test.timeout", "15m"}
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

// isTestOutput tells the testing package's own lines (results and t.Log
// output) from what the server under test logs.
func isTestOutput(line string) bool {
	trimmed := strings.TrimLeft(line, " ")
	for _, prefix := range []string{"=== ", "--- ", "PASS", "FAIL", "ok ", "browser_test.go:"} {
		if strings.HasPrefix(trimmed, prefix) {
			return true
		}
	}
	return false
}

// browserCall runs the browser cases, in order, against one Caddy and one
// Chromium inside the network namespace.
func browserCall(t *testing.T) {
	loadConfig(t, "text/caddyfile", withGlobals(browserGlobals, browserSite(t)), false)
	ctx := browser(t)

	t.Run("six pages mesh", func(t *testing.T) {
		ps := openRoom(t, ctx, "mesh", "")
		fullMesh(t, ps)
		saveScreenshot(t, ps[0], "six-tiles.png")
		// The same call on a phone-sized screen.
		if err := chromedp.Do(ps[1].ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
			t.Fatal(err)
		}
		ps[1].waitFor("the phone layout", `document.querySelector("#tiles").getBoundingClientRect().width <= 390`)
		saveScreenshot(t, ps[1], "six-tiles-phone.png")

		// A seventh page is told the room is full, through the client API.
		extra := openPage(t, ctx, "page 7", "https://localhost:9443/?quality=low&room=mesh")
		extra.waitFor("the room_full error", `window.demo && window.demo.error === "room_full" && document.getElementById("notice").textContent.includes("full")`)

		// A page that reloads rejoins and reconnects to all others.
		if err := chromedp.Do(ps[2].ctx, chromedp.Reload()); err != nil {
			t.Fatal(err)
		}
		fullMesh(t, ps)
	})

	t.Run("client options", func(t *testing.T) {
		p := openPage(t, ctx, "options page", "https://localhost:9443/")
		// Without iceServers in the welcome, the client fetches them from
		// credentialsUrl; the URL defaults to "ws" next to client.js.
		p.waitFor("credentials fetched by the client", `(async () => {
			const { RoomClient } = await import("/plain/client.js");
			const c = new RoomClient({ room: "options", credentialsUrl: "/credentials" });
			const w = await c.connect();
			const ok = !w.iceServers && c.iceServers.length === 2 && c.iceServers[1].username.includes(":") &&
				c.ws.url.startsWith("wss://localhost:9443/plain/ws?room=options");
			c.close();
			return ok;
		})()`)
		// close() before the welcome rejects connect() with code "closed".
		p.check("close() during connect()", `(async () => {
			const { RoomClient } = await import("/plain/client.js");
			const c = new RoomClient({ room: "closing" });
			const pending = c.connect();
			c.close();
			const err = await pending.then(() => null, (e) => e);
			return err && err.code === "closed" ? "ok" : "connect() gave " + (err ? err.code : "a welcome");
		})()`)
		// A server that stops answering pings (here: the pings never reach
		// it) is given up after one ping interval without any frame, and
		// the client rejoins on a new socket.
		p.check("the ping watchdog", `(async () => {
			const { RoomClient } = await import("/plain/client.js");
			const c = new RoomClient({ room: "watchdog", pingIntervalMs: 300, minBackoffMs: 50, maxBackoffMs: 100 });
			const first = (await c.connect()).id;
			const closed = new Promise((r) => c.addEventListener("close", (e) => r(e.detail), { once: true }));
			const reopened = new Promise((r) => c.addEventListener("open", (e) => r(e.detail), { once: true }));
			const dead = c.ws;
			dead.send = () => {};
			const timeout = new Promise((r) => setTimeout(() => r(null), 10000));
			const d = await Promise.race([closed, timeout]), o = d && await Promise.race([reopened, timeout]);
			c.close();
			if (!d) return "no close event";
			if (!o) return "no rejoin";
			return d.willReconnect && d.reason === "no answer to ping" && o.id !== first && c.ws !== dead ? "ok" : JSON.stringify(d);
		})()`)
	})

	t.Run("relay over TURNS", func(t *testing.T) {
		p := openPage(t, ctx, "turns page", "https://localhost:9443/")
		// Two clients in one page, allowed nothing but the turns: server
		// with the certificate Caddy manages for localhost.
		p.waitFor("a data channel message over TURNS", `(async () => {
			const { RoomClient } = await import("/plain/client.js");
			const creds = await (await fetch("/credentials")).json();
			const turns = creds.iceServers.find(s => s.urls.some(u => u.startsWith("turns:")));
			const iceServers = [{ ...turns, urls: turns.urls.filter(u => u.startsWith("turns:")) }];
			const opts = { room: "turns", iceServers, iceTransportPolicy: "relay", dataChannels: ["d"] };
			const a = new RoomClient(opts), b = new RoomClient(opts);
			const got = new Promise(resolve => b.addEventListener("message", e => resolve(e.detail.data)));
			a.addEventListener("datachannelopen", e => e.detail.channel.send("over turns"));
			await a.connect();
			await b.connect();
			const msg = await Promise.race([got, new Promise(r => setTimeout(() => r("timeout"), 20000))]);
			const stats = await b.connection(a.id).getStats();
			let local = null;
			stats.forEach(r => { if (r.type === "transport" && r.selectedCandidatePairId) local = stats.get(stats.get(r.selectedCandidatePairId).localCandidateId); });
			a.close(); b.close();
			return msg === "over turns" && local && local.candidateType === "relay" && local.relayProtocol === "tls";
		})()`)
	})

	t.Run("six pages relay only", func(t *testing.T) {
		ps := openRoom(t, ctx, "relay", "&relay=1")
		fullMesh(t, ps)
		for _, p := range ps {
			p.waitFor("only relay candidates in use", jsOnlyRelay)
		}

		// The TURN server is replaced under the call (a new realm needs a
		// new server): relayed paths die, ICE fails, the clients restart
		// ICE, and the pairs renegotiate, both sides at once where both
		// notice (perfect negotiation settles the glare).
		start := time.Now()
		loadConfig(t, "text/caddyfile", withGlobals(strings.Replace(browserGlobals, "realm localhost", "realm restarted.test", 1), browserSite(t)), false)
		ps[0].waitFor("the broken relay to be noticed", `[...document.querySelectorAll(".tile:not(.local)")].some(t => t.dataset.state !== "connected")`)
		fullMesh(t, ps)
		for _, p := range ps {
			p.waitFor("only relay candidates in use after the ICE restart", jsOnlyRelay)
		}
		t.Logf("ICE restarted over the new TURN server within %s", time.Since(start).Round(time.Millisecond))

		// The server drops everyone (the route is removed: close 1001);
		// when it is back, the clients reconnect with backoff and the
		// mesh forms again.
		loadConfig(t, "text/caddyfile", withGlobals(browserGlobals, "localhost:9443 {\n\trespond 503\n}\n"), false)
		for _, p := range ps {
			p.waitFor("the drop to be noticed", `document.querySelectorAll(".tile:not(.local)").length === 0`)
		}
		loadConfig(t, "text/caddyfile", withGlobals(browserGlobals, browserSite(t)), false)
		fullMesh(t, ps)
	})
}
