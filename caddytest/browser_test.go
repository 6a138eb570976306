package caddytest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
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
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "{") { // Caddy's JSON logs are noise here
			t.Log(line)
		}
	}
	if err != nil {
		t.Fatalf("browser tests in network namespace %s: %v", ns, err)
	}
	if !strings.Contains(string(out), "--- PASS: TestBrowser") {
		t.Fatal("the browser tests did not report a pass")
	}
}

// screenshotDir is where screenshots go: $TEST_OUTPUT_DIR, or testoutput/
// at the repository root (ignored by git).
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("TEST_OUTPUT_DIR")
	if dir == "" {
		dir = filepath.Join("..", "testoutput")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts one headless Chromium; each page is a tab of it.
func browser(t *testing.T) context.Context {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// Host candidates on loopback (the namespace has nothing else), in
		// the clear rather than behind mDNS names, which would need
		// multicast queries.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		// The site's certificate comes from Caddy's internal CA.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1280, 800),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void]("1")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// page is one tab showing the demo.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context
}

func openPage(t *testing.T, browserCtx context.Context, name, url string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(url)); err != nil {
		t.Fatalf("%s: opening %s: %v", name, url, err)
	}
	return &page{t: t, name: name, ctx: ctx}
}

// eval runs a script (awaiting a promise) in the page.
func eval[T any](p *page, js string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// waitFor polls a boolean script in the page until it holds.
func (p *page) waitFor(what, js string) {
	p.t.Helper()
	deadline := time.Now().Add(browserWait)
	var last error
	for time.Now().Before(deadline) {
		ok, err := eval[bool](p, js)
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	state, _ := eval[string](p, `JSON.stringify({
		tiles: [...document.querySelectorAll(".tile")].map(t => t.dataset.peer.slice(0,4) + ":" + t.dataset.state),
		notice: document.getElementById("notice").textContent,
		peers: window.demo.client ? [...window.demo.client.peers.values()].map(p => [p.id.slice(0,4), p.polite, p.pc.signalingState, p.pc.iceConnectionState, p.pc.connectionState]) : [],
		errors: window.demo.errors,
	})`)
	p.t.Fatalf("%s: timed out waiting for %s (last error %v); state %s", p.name, what, last, state)
}

// Page-side checks, evaluated in each tab.
const (
	jsAllConnected = `(() => {
		const tiles = [...document.querySelectorAll(".tile:not(.local)")];
		return tiles.length === %d && tiles.every(t => t.dataset.state === "connected");
	})()`
	jsVideoFlowing = `(async () => {
		const c = window.demo.client;
		if (!c || c.peers.size !== %d) return false;
		for (const p of c.peers.values()) {
			const stats = await p.pc.getStats();
			let frames = 0;
			stats.forEach(r => { if (r.type === "inbound-rtp" && r.kind === "video") frames += r.framesDecoded || 0; });
			if (frames === 0) return false;
		}
		return [...document.querySelectorAll(".tile:not(.local) video")].every(v => v.videoWidth > 0);
	})()`
	jsChannelsOpen = `[...window.demo.client.peers.values()].every(p => p.channels.get("chat")?.readyState === "open")`
	jsSayHello     = `(() => { window.demo.client.send("chat", "hello from " + window.demo.client.id); return true; })()`
	jsHeardAll     = `new Set(window.demo.messages.filter(m => m.text.startsWith("hello from ")).map(m => m.text)).size >= %d`
	// jsOnlyRelay: the selected pair of every connection is relayed.
	jsOnlyRelay = `(async () => {
		for (const p of window.demo.client.peers.values()) {
			const stats = await p.pc.getStats();
			let pair = null;
			stats.forEach(r => { if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
			if (!pair) return false;
			// Every page checks its own end, which it knows for sure; the
			// remote end may show as peer-reflexive when a check arrives
			// before its candidate did (the other page checks it as local).
			const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
			if (local.candidateType !== "relay" || !["relay", "prflx"].includes(remote.candidateType)) return false;
		}
		return true;
	})()`
)

// fullMesh checks every page sees every other one connected, video frames
// decoded from each, and a data channel message from each.
func fullMesh(t *testing.T, ps []*page) {
	t.Helper()
	others := len(ps) - 1
	start := time.Now()
	for _, p := range ps {
		p.waitFor("clearing the chat log", `(() => { window.demo.messages = []; return true; })()`)
	}
	for _, p := range ps {
		p.waitFor("all peers connected", fmt.Sprintf(jsAllConnected, others))
	}
	t.Logf("%d pages fully connected after %s", len(ps), time.Since(start).Round(time.Millisecond))
	for _, p := range ps {
		p.waitFor("video frames from every peer", fmt.Sprintf(jsVideoFlowing, others))
		p.waitFor("chat channels open", jsChannelsOpen)
	}
	for _, p := range ps {
		p.waitFor("sending hello", jsSayHello)
	}
	for _, p := range ps {
		p.waitFor("a hello from every peer", fmt.Sprintf(jsHeardAll, others))
	}
	t.Logf("media and data flowing between all pairs after %s", time.Since(start).Round(time.Millisecond))
}

func openRoom(t *testing.T, ctx context.Context, room, query string) []*page {
	ps := make([]*page, pages)
	for i := range ps {
		ps[i] = openPage(t, ctx, fmt.Sprintf("page %d", i+1), "https://localhost:9443/?quality=low&room="+room+query)
		ps[i].waitFor("joining", `!!(window.demo && window.demo.client && window.demo.client.id)`)
	}
	return ps
}

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

// saveScreenshot writes the page as a PNG and checks it is not blank.
func saveScreenshot(t *testing.T, p *page, name string) {
	t.Helper()
	buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatal(err)
	}
	if err := notBlank(img); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(screenshotDir(t), name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// notBlank demands real variety in the picture: many distinct colours and
// a spread of brightness, as six video tiles with fake camera frames give.
func notBlank(img image.Image) error {
	b := img.Bounds()
	colours := map[uint32]bool{}
	var sum, sumSq, n float64
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[(r>>11)<<10|(g>>11)<<5|bl>>11] = true
			l := 0.299*float64(r>>8) + 0.587*float64(g>>8) + 0.114*float64(bl>>8)
			sum += l
			sumSq += l * l
			n++
		}
	}
	mean := sum / n
	variance := sumSq/n - mean*mean
	if len(colours) < 64 || variance < 100 {
		return fmt.Errorf("looks blank: %d colours, brightness variance %.0f", len(colours), variance)
	}
	return nil
}
