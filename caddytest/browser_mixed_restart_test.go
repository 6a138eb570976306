package caddytest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/internal/bidi"
)

// The issue 18 matrix of ICE restarts between Firefox and Chromium: a pair
// made of one page in each browser (testdata/browser/restart_cases.js,
// restartSide) restarts its connection, and must be stable and connected
// with new ICE credentials on both sides within 10 s.

const (
	restartFirefoxPath = "/usr/bin/firefox-esr"
	// mixedRestartsEnv=1 runs the matrix. Off by default for now: the
	// Firefox started here gathers no ICE candidate at all in the test
	// namespace (even on loopback, with a microphone granted), so no
	// first connection forms; the Firefox setup of the suite (issue 18
	// section 2) is to provide one that does.
	mixedRestartsEnv = "CADDYWEBRTC_FIREFOX_RESTARTS"
	// restartConverge is the bound on a restart.
	restartConverge = 10 * time.Second
)

// mixedRestart is one row: whose connection makes the pair's first offer,
// who restarts ICE ("firefox", "chromium" or "both" at once), and which
// side is polite (perfect negotiation: the one with the smaller id).
type mixedRestart struct{ first, by, polite string }

func mixedRestartCases() []mixedRestart {
	var cs []mixedRestart
	for _, first := range []string{"firefox", "chromium"} {
		for _, by := range []string{"firefox", "chromium", "both"} {
			for _, polite := range []string{"firefox", "chromium"} {
				cs = append(cs, mixedRestart{first, by, polite})
			}
		}
	}
	return cs
}

// restartFirefoxPrefs: a Firefox that calls on loopback in the clear,
// with a fake microphone granted without asking: a page that has not
// been granted one offers only the address of its default route, and the
// namespace has none.
var restartFirefoxPrefs = map[string]any{
	"media.navigator.streams.fake":                      true,
	"media.navigator.permission.disabled":               true,
	"media.peerconnection.ice.loopback":                 true,
	"media.peerconnection.ice.force_interface":          "lo",
	"media.peerconnection.ice.obfuscate_host_addresses": false,
	"dom.min_background_timeout_value":                  4,
	"dom.timeout.enable_budget_timer_throttling":        false,
}

// restartFirefoxTab is a Firefox tab for these cases.
type restartFirefoxTab struct {
	fx *bidi.Firefox
	id string
}

func (f restartFirefoxTab) evaluate(js string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), evalTimeout)
	defer cancel()
	v, err := f.fx.Evaluate(ctx, f.id, js)
	if err != nil || v == nil {
		return nil, err
	}
	return json.Marshal(v)
}

func (f restartFirefoxTab) reload() error {
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	return f.fx.Reload(ctx, f.id)
}

func (f restartFirefoxTab) browser() string { return "firefox" }

// openRestartFirefox starts Firefox with one tab on the test site, the
// test scripts installed.
func openRestartFirefox(t *testing.T) *page {
	t.Helper()
	if _, err := os.Stat(restartFirefoxPath); err != nil {
		t.Skipf("no Firefox ESR at %s", restartFirefoxPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fx, err := bidi.Launch(ctx, bidi.Options{Path: restartFirefoxPath, Prefs: restartFirefoxPrefs})
	if err != nil {
		t.Fatalf("starting firefox: %v", err)
	}
	t.Cleanup(fx.Close)
	id, err := fx.CreateTab(ctx)
	if err == nil {
		err = fx.AddPreloadScript(ctx, id, pageScripts(t))
	}
	if err == nil {
		err = fx.Navigate(ctx, id, siteOrigin+"/")
	}
	if err != nil {
		t.Fatalf("opening the firefox page: %v", err)
	}
	return &page{t: t, name: "firefox page", tab: restartFirefoxTab{fx, id}}
}

// mixedRestarts runs the matrix with one Chromium page and one Firefox page.
func mixedRestarts(t *testing.T, b *chromium) {
	if os.Getenv(mixedRestartsEnv) != "1" {
		t.Skipf("%s=1 runs it (Firefox gathers no ICE candidates in the namespace yet)", mixedRestartsEnv)
	}
	pages := map[string]*page{
		"chromium": openPage(t, b, "chromium page", siteOrigin+"/"),
		"firefox":  openRestartFirefox(t),
	}
	for i, c := range mixedRestartCases() {
		name := fmt.Sprintf("first offer %s, restart by %s, %s polite", c.first, c.by, c.polite)
		t.Run(name, func(t *testing.T) {
			for _, p := range pages {
				p.t = t
			}
			runMixedRestart(t, pages, c, fmt.Sprintf("mixed-%d-%d", i, time.Now().UnixNano()))
		})
	}
}

func runMixedRestart(t *testing.T, pages map[string]*page, c mixedRestart, room string) {
	other := map[string]string{"firefox": "chromium", "chromium": "firefox"}
	offerer, answerer := pages[c.first], pages[other[c.first]]
	defer func() {
		for _, p := range pages {
			_, _ = eval[string](p, `restartSide.leave()`)
		}
	}()
	// The newcomer makes the first offer; it joins again under a new id
	// until the polite side is the one the case wants.
	answererID := read[string](answerer, "its id", jsCall("restartSide.join", room, 0))
	for tries := 0; ; tries++ {
		offererID := read[string](offerer, "its id", jsCall("restartSide.join", room, 0))
		if (offererID < answererID) == (pages[c.polite] == offerer) {
			break
		}
		if tries == 20 {
			t.Fatal("no id order gave the polite side wanted")
		}
	}
	both := []*page{offerer, answerer}
	untilBoth(t, both, "the first connection", `restartSide.mark()`, time.Now())
	start := time.Now()
	for name, p := range pages {
		if c.by == name || c.by == "both" {
			p.check("restarting ICE", `restartSide.restart()`)
		}
	}
	untilBoth(t, both, "stable and connected with new ICE credentials", `restartSide.converged()`, start)
	t.Logf("stable and connected with new ICE credentials on both sides after %s", time.Since(start).Round(time.Millisecond))
}

// untilBoth waits until js answers "ok" on both pages, at most
// restartConverge from start.
func untilBoth(t *testing.T, both []*page, what, js string, start time.Time) {
	t.Helper()
	for _, p := range both {
		for {
			got := evalOr(p, js)
			if got == checkOK {
				break
			}
			if strings.HasPrefix(got, checkFail) || time.Since(start) > restartConverge {
				t.Fatalf("%s: no %s within %s (%q): %s %s, %s %s", p.name, what, restartConverge, got,
					both[0].name, evalOr(both[0], `restartSide.state()`), both[1].name, evalOr(both[1], `restartSide.state()`))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// evalOr is a string the page's script gives, or the error.
func evalOr(p *page, js string) string {
	s, err := eval[string](p, js)
	if err != nil {
		return "error: " + err.Error()
	}
	return s
}
