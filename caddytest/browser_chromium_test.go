//go:build linux

package caddytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// fakeCameraFPS is the frame rate of Chromium's fake camera, before the
// demo's ?quality=test constraints pick a small size from it: every frame
// is encoded once per peer, and the suite must pass on a 2-core machine.
//
// Pages keep a renderer process each. Fewer were measured: Chromium
// ignores --renderer-process-limit for the tabs a test opens, and
// --process-per-site, which puts them all in one process, serialises
// every page on one main thread: the cut case took a quarter longer to
// re-form its mesh, for no less CPU.
const fakeCameraFPS = 5

// chromium is one headless Chromium; each page is a tab of it.
type chromium struct {
	ctx context.Context
	// dataDir is its user data directory, which names its processes.
	dataDir string
}

// cpu is the CPU time the browser has used so far.
func (b *chromium) cpu() time.Duration { return chromiumCPU(b.dataDir) }

// browser starts Chromium.
func browser(t *testing.T) *chromium {
	dataDir := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(dataDir),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("use-fake-device-for-media-stream", fmt.Sprintf("fps=%d", fakeCameraFPS)),
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
	return &chromium{ctx: ctx, dataDir: dataDir}
}

// page is one tab showing the demo (or a bare page for client cases), in
// Chromium or in Firefox: the checks only evaluate scripts in it and
// reload it.
type page struct {
	t    *testing.T
	name string
	tab  tab
	// ctx is a Chromium page's tab, for what only the Chromium cases do
	// through the DevTools protocol (viewport, screenshots, closing the
	// tab); nil on a Firefox page.
	ctx context.Context
}

// tab is what a page needs of its browser.
type tab interface {
	// evaluate runs js, awaiting a promise, and returns its value as
	// JSON: nil when it is null or undefined.
	evaluate(js string) (json.RawMessage, error)
	// reload reloads the page and returns once it has loaded.
	reload() error
	// browser names the browser, for messages.
	browser() string
}

// evalTimeout bounds one evaluation: the checks are quick, and a page
// that hangs must fail the case, not the suite's timeout.
const evalTimeout = 30 * time.Second

// chromiumTab is a Chromium tab, driven over the DevTools protocol.
type chromiumTab struct{ ctx context.Context }

func (c chromiumTab) evaluate(js string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(c.ctx, evalTimeout)
	defer cancel()
	// []byte is the value as JSON, nil for undefined.
	return chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
}

func (c chromiumTab) reload() error   { return chromedp.Do(c.ctx, chromedp.Reload()) }
func (c chromiumTab) browser() string { return "chromium" }

// openPage opens a tab with the test scripts (testdata/browser) installed
// before the page's own, also after reloads, and loads url in it.
func openPage(t *testing.T, b *chromium, name, url string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	install := chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		_, err := cdp.Call(ctx, target, cdppage.AddScriptToEvaluateOnNewDocument,
			cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: pageScripts(t)})
		return err
	})
	if err := chromedp.Do(ctx, install, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(url)); err != nil {
		t.Fatalf("%s: opening %s: %v", name, url, err)
	}
	return &page{t: t, name: name, tab: chromiumTab{ctx}, ctx: ctx}
}

// errNoValue is a script whose value is null or undefined where the
// caller wants a value that cannot be nil.
var errNoValue = errors.New("the script's value is null or undefined")

// eval runs a script (awaiting a promise) in the page and decodes its
// value into a T.
func eval[T any](p *page, js string) (T, error) {
	var v T
	raw, err := p.tab.evaluate(js)
	if err != nil {
		return v, err
	}
	if raw == nil || string(raw) == "null" {
		switch reflect.TypeFor[T]().Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			return v, nil
		}
		return v, errNoValue
	}
	err = json.Unmarshal(raw, &v)
	return v, err
}

// The answers of page-side checks (testdata/browser/checks.js): "ok" when
// the condition holds, "" while it may still come, or "fail: <why>" when
// it cannot any more (a fatal error, say), which ends the wait at once.
const (
	checkOK   = "ok"
	checkFail = "fail"
	// pollInterval is how often a check is run again.
	pollInterval = 200 * time.Millisecond
)

// waitFor polls a page-side check until it answers "ok", and fails the
// test when it answers "fail: ..." or browserWait passes.
func (p *page) waitFor(what, js string) {
	p.t.Helper()
	deadline := time.Now().Add(browserWait)
	var last error
	var answer string
	for time.Now().Before(deadline) {
		got, err := eval[string](p, js)
		switch {
		case err == nil && got == checkOK:
			return
		case err == nil && strings.HasPrefix(got, checkFail):
			p.t.Fatalf("%s: %s: %s; state %s", p.name, what, got, p.state())
		}
		last, answer = err, got
		time.Sleep(pollInterval)
	}
	p.t.Fatalf("%s: timed out waiting for %s (last answer %q, error %v); state %s", p.name, what, answer, last, p.state())
}

// check runs a one-shot script that resolves to "ok" or to what went wrong.
func (p *page) check(what, js string) {
	p.t.Helper()
	got, err := eval[string](p, js)
	if err != nil || got != checkOK {
		p.t.Fatalf("%s: %s: got %q, error %v", p.name, what, got, err)
	}
}

// state describes the page for a failure message.
func (p *page) state() string {
	s, err := eval[string](p, `check.state()`)
	if err != nil {
		return fmt.Sprintf("(unavailable: %v)", err)
	}
	return s
}

// id is the page's client id in its room ("" when not joined).
func (p *page) id() string {
	p.t.Helper()
	return read[string](p, "its id", `check.id()`)
}

// joins is how often the page joined its room or resumed its session.
func (p *page) joins() int {
	p.t.Helper()
	return read[int](p, "its joins", `check.joins()`)
}

// read evaluates js in the page, failing the test if it cannot.
func read[T any](p *page, what, js string) T {
	p.t.Helper()
	v, err := eval[T](p, js)
	if err != nil {
		p.t.Fatalf("%s: reading %s: %v", p.name, what, err)
	}
	return v
}

// jsCall renders a call of a page-side function with JSON arguments.
func jsCall(fn string, args ...any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			panic(err)
		}
		parts[i] = string(b)
	}
	return fn + "(" + strings.Join(parts, ", ") + ")"
}
