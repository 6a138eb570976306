//go:build linux

package caddytest

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The Go side of the page checks in testdata/browser/checks.js.

// openRoom opens the demo in pages tabs, all joining room, and waits until
// each has joined.
func openRoom(t *testing.T, b *chromium, room string, query url.Values) []*page {
	t.Helper()
	urls := make([]string, pages)
	for i := range urls {
		urls[i] = demoURL(room, query)
	}
	return openPages(t, b, urls)
}

// openPages opens one demo tab per URL and waits until each has joined.
func openPages(t *testing.T, b *chromium, urls []string) []*page {
	t.Helper()
	ps := make([]*page, len(urls))
	for i, u := range urls {
		ps[i] = openPage(t, b, fmt.Sprintf("page %d", i+1), u)
		ps[i].waitFor("joining", `check.joined()`)
	}
	return ps
}

// fullMesh checks every page sees every other one connected, media
// arriving from each, a data channel message from each, and only loopback
// addresses in use.
func fullMesh(t *testing.T, ps []*page) {
	t.Helper()
	start := time.Now()
	allConnected(t, ps)
	t.Logf("%d pages fully connected after %s (load %s)", len(ps), time.Since(start).Round(time.Millisecond), loadAverage())
	waitAll(t, ps, "media from every peer", jsCall("check.mediaFlowing", len(ps)-1))
	helloCrossing(t, ps)
	waitAll(t, ps, "loopback addresses on every selected candidate pair", `check.onlyLoopback()`)
	t.Logf("media and data flowing between all pairs after %s", time.Since(start).Round(time.Millisecond))
}

// allConnected waits until every page has exactly the others as members,
// each connected: a stale member (one that left) or a missing one fails.
func allConnected(t *testing.T, ps []*page) {
	t.Helper()
	waitAll(t, ps, "all peers connected", jsCall("check.allConnected", len(ps)-1))
}

// helloCrossing has every page say hello on the chat channel and waits
// until each heard one from every member.
func helloCrossing(t *testing.T, ps []*page) {
	t.Helper()
	// Every log is cleared before anyone speaks, or an early hello would
	// be cleared away.
	waitAll(t, ps, "clearing the chat log", `check.clearMessages()`)
	waitAll(t, ps, "a hello to and from every peer", `check.helloRound()`)
}

// waitAll polls a page-side check on every page until it answers "ok" on
// all of them in one pass: a condition of the whole room, which holds at
// one moment, not on each page at some moment of its own. It fails at
// once on a "fail: ..." answer, and after browserWait.
func waitAll(t *testing.T, ps []*page, what, js string) {
	t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		var pending []string
		for _, p := range ps {
			got, err := eval[string](p, js)
			if err == nil && strings.HasPrefix(got, checkFail) {
				t.Fatalf("%s: %s: %s; states%s", p.name, what, got, states(ps))
			}
			if err != nil || got != checkOK {
				pending = append(pending, p.name)
			}
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s on %s; states%s", what, strings.Join(pending, ", "), states(ps))
		}
		time.Sleep(pollInterval)
	}
}

// states describes pages for a failure message.
func states(ps []*page) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\n%s: %s", p.name, p.state())
	}
	return b.String()
}
