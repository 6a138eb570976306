package caddytest

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

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
		lastCheck: window.demo.lastCheck,
	})`)
	p.t.Fatalf("%s: timed out waiting for %s (last error %v); state %s", p.name, what, last, state)
}

// check runs a one-shot script that resolves to "ok" or to what went wrong.
func (p *page) check(what, js string) {
	p.t.Helper()
	got, err := eval[string](p, js)
	if err != nil || got != "ok" {
		p.t.Fatalf("%s: %s: got %q, error %v", p.name, what, got, err)
	}
}
