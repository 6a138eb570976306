//go:build linux

package caddytest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// restartCase is one row of the ICE restart table: two clients in one
// page (testdata/browser/restart_cases.js) restart their connection, and
// must be stable and connected with new ICE credentials on both sides
// within 10 s (plus the retry delay where the first restart is lost).
type restartCase struct {
	// By is who restarts ICE: "offerer" (the side that made the pair's
	// first offer, which holds DTLS role passive), "answerer", or "both"
	// at once.
	By string `json:"by"`
	// Firefox makes answers to restart offers claim DTLS role active, as
	// Firefox's do: refused when the first offerer answers a restart.
	Firefox bool `json:"firefox,omitempty"`
	// Refuse is "answer" or "offer": the next restart description of that
	// type cannot be applied, once.
	Refuse string `json:"refuse,omitempty"`
	// Lose loses the first restart offer on its way.
	Lose bool `json:"lose,omitempty"`
	// RetryMs is the clients' restartRetryMs (0: the default).
	RetryMs int `json:"retryMs,omitempty"`
}

func (c restartCase) name() string {
	parts := []string{"restart by " + c.By}
	if c.Firefox {
		parts = append(parts, "Firefox-like answers")
	}
	if c.Refuse != "" {
		parts = append(parts, c.Refuse+" refused once")
	}
	if c.Lose {
		parts = append(parts, fmt.Sprintf("offer lost, retry after %d ms", c.RetryMs))
	}
	return strings.Join(parts, ", ")
}

var restartCases = []restartCase{
	{By: "offerer"},
	{By: "answerer"},
	{By: "both"},
	{By: "offerer", Firefox: true},
	{By: "answerer", Firefox: true},
	{By: "both", Firefox: true},
	{By: "offerer", Refuse: "answer"},
	{By: "offerer", Refuse: "offer"},
	{By: "both", Refuse: "answer"},
	{By: "offerer", Lose: true, RetryMs: 2000},
	{By: "answerer", Lose: true, RetryMs: 2000},
}

// iceRestarts runs the restart table in one page that joins no room itself.
func iceRestarts(t *testing.T, b *chromium) {
	p := openPage(t, b, "restart page", siteOrigin+"/")
	cases := restartCases
	for i := 1; i < repeatRestarts(); i++ {
		cases = append(cases, restartCases...)
	}
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			got, err := eval[string](p, jsCall("restarts.run", c))
			if err != nil || strings.HasPrefix(got, checkFail) || !strings.HasPrefix(got, "{") {
				t.Fatalf("got %q, error %v", got, err)
			}
			t.Logf("converged: %s", got)
		})
	}
	t.Run("demo badges", func(t *testing.T) { demoBadgesRestart(t, b) })
}

// demoBadgesRestart: while a peer's connection restarts, the demo's badge
// for it says so, on both pages, whichever side restarts.
func demoBadgesRestart(t *testing.T, b *chromium) {
	ps := openPages(t, b, []string{demoURL("badges", audioOnly), demoURL("badges", audioOnly)})
	allConnected(t, ps)
	for _, p := range ps {
		waitAll(t, ps, "watching the badges", `check.watchBadges()`)
		p.check("restarting every connection", `check.restartAll()`)
		waitAll(t, ps, "every badge to show the restart and then connected", `check.badgesRestarted()`)
	}
}

// repeatRestarts is how many times the table runs: once, or as often as
// CADDYWEBRTC_RESTART_REPEAT says, to hunt a race (with the CPU loaded,
// say: a frame handler that waited on a closed connection for good
// showed in 1 of 10 runs that way, and in CI).
func repeatRestarts() int {
	n, _ := strconv.Atoi(os.Getenv("CADDYWEBRTC_RESTART_REPEAT"))
	return n
}
