//go:build linux

package caddytest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The issue 18 matrix of ICE restarts between Firefox and Chromium: a pair
// made of one page in each browser (testdata/browser/restart_cases.js,
// restartSide) restarts its connection, and must be stable and connected
// with new ICE credentials on both sides within 10 s.

// restartConverge is the bound on a restart.
const restartConverge = 10 * time.Second

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

// mixedRestarts runs the matrix with one Chromium page and one Firefox page.
func mixedRestarts(t *testing.T, b *chromium, fx *firefox) {
	pages := map[string]*page{
		"chromium": openPage(t, b, "chromium page", siteOrigin+"/"),
		"firefox":  openFirefoxPage(t, fx, "firefox page", siteOrigin+"/"),
	}
	cases := mixedRestartCases()
	for i := 1; i < repeatRestarts(); i++ {
		cases = append(cases, mixedRestartCases()...)
	}
	for i, c := range cases {
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
	// The newcomer makes the first offer. Ids are random: both join again,
	// in a fresh room, until the polite side (the smaller id) is the one
	// the case wants, an even chance each time. (Joining only the
	// newcomer again would not do: against an answerer whose id happens
	// to sort near one end, twenty tries may all lose.)
	for tries := 0; ; tries++ {
		in := fmt.Sprintf("%s-%d", room, tries)
		answererID := read[string](answerer, "its id", jsCall("restartSide.join", in, 0))
		offererID := read[string](offerer, "its id", jsCall("restartSide.join", in, 0))
		if (offererID < answererID) == (pages[c.polite] == offerer) {
			break
		}
		if tries == 30 {
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
