//go:build linux

package caddytest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/internal/bidi"
)

// Firefox ESR from Debian's packages, driven over WebDriver BiDi
// (internal/bidi), for the cases that mix it with Chromium (issue 18).

const firefoxPath = "/usr/bin/firefox-esr"

// firefoxPrefs make Firefox a browser the demo can call from in the test
// namespace, on top of bidi.Prefs (which keep it off the internet).
var firefoxPrefs = map[string]any{
	// A fake camera and microphone, granted without asking.
	"media.navigator.streams.fake":        true,
	"media.navigator.permission.disabled": true,
	"media.autoplay.default":              0,
	"media.autoplay.blocking_policy":      0,
	// Host candidates on loopback (the namespace has nothing else), in
	// the clear rather than behind mDNS names.
	"media.peerconnection.ice.loopback":                 true,
	"media.peerconnection.ice.obfuscate_host_addresses": false,
	// Every page but one is a background tab: no suspended video
	// decoding, no throttled timers there, or the checks of media and of
	// the client's timers would see a tab that is not in use.
	"media.suspend-bkgnd-video.enabled":            false,
	"dom.min_background_timeout_value":             4,
	"dom.timeout.enable_budget_timer_throttling":   false,
	"dom.timeout.background_throttling_max_budget": -1,
}

// firefox is one headless Firefox; each page is a tab of it.
type firefox struct{ *bidi.Firefox }

// startFirefox starts Firefox for the rest of owner (TestBrowser), failing
// t, the case that first needs it, if it cannot.
func startFirefox(owner, t *testing.T) *firefox {
	t.Helper()
	if _, err := os.Stat(firefoxPath); err != nil {
		t.Fatalf("the Firefox cases need Debian's firefox-esr at %s (apt-get install -y firefox-esr; .ci/run does), or %s=1 to skip the browser tests", firefoxPath, skipBrowserEnv)
	}
	if !hasDefaultRoute() {
		t.Fatalf("Firefox gathers no ICE candidates without a default route: add one over loopback in the namespace (ip route add default dev lo src 127.0.0.1), as runInNetns does")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fx, err := bidi.Launch(ctx, bidi.Options{Path: firefoxPath, Prefs: firefoxPrefs})
	if err != nil {
		t.Fatalf("starting firefox: %v", err)
	}
	owner.Cleanup(fx.Close)
	return &firefox{fx}
}

// hasDefaultRoute tells whether the network namespace has an IPv4
// default route (destination 0 in /proc/net/route).
func hasDefaultRoute() bool {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 1 && f[1] == "00000000" {
			return true
		}
	}
	return false
}

// lazyFirefox starts Firefox the first time a case asks for it, so that a
// run of Chromium cases alone (-run) does without.
type lazyFirefox struct {
	owner *testing.T
	fx    *firefox
}

func (l *lazyFirefox) get(t *testing.T) *firefox {
	if l.fx == nil {
		l.fx = startFirefox(l.owner, t)
	}
	return l.fx
}

// firefoxTab is a Firefox tab (a BiDi browsing context).
type firefoxTab struct {
	fx *firefox
	id string
}

func (f firefoxTab) evaluate(js string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), evalTimeout)
	defer cancel()
	v, err := f.fx.Evaluate(ctx, f.id, js)
	if err != nil || v == nil {
		return nil, err
	}
	return json.Marshal(v)
}

func (f firefoxTab) reload() error {
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	return f.fx.Reload(ctx, f.id)
}

func (f firefoxTab) browser() string { return "firefox" }

// openFirefoxPage opens a Firefox tab with the test scripts installed
// before the page's own, also after reloads, loads url in it, and closes
// it when the test ends.
func openFirefoxPage(t *testing.T, fx *firefox, name, url string) *page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	id, err := fx.CreateTab(ctx)
	if err != nil {
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = fx.CloseTab(ctx, id)
	})
	if err := fx.AddPreloadScript(ctx, id, pageScripts(t)); err != nil {
		t.Fatalf("%s: installing the test scripts: %v", name, err)
	}
	if err := fx.Navigate(ctx, id, url); err != nil {
		t.Fatalf("%s: opening %s: %v", name, url, err)
	}
	return &page{t: t, name: name, tab: firefoxTab{fx, id}}
}

func (fx *firefox) label() string { return "Firefox" }

// cpu is the CPU time of Firefox's processes: it starts each in its own
// process group (bidi.Launch), and its content processes stay in it.
func (fx *firefox) cpu() time.Duration {
	var total time.Duration
	for _, pid := range fx.pids() {
		total += processCPU(pid)
	}
	return total
}

func (fx *firefox) settle() { settle(func() int { return len(fx.pids()) }) }

// pids are the live processes of Firefox's process group.
func (fx *firefox) pids() []int {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	group := strconv.Itoa(fx.PID())
	var pids []int
	for _, dir := range procs {
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if f := statFields(stat); err != nil || len(f) < 3 || f[2] != group {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(dir))
		pids = append(pids, pid)
	}
	return pids
}
