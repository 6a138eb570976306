//go:build linux

package caddytest

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Cases of issue 18: Firefox and Chromium pages in the same calls. Each is
// cheap (audio only, or video at the test quality for the pair that
// checks video) so that two browsers fit a 2-core machine.

// inBrowser is a page to open: in Firefox or in Chromium, at url.
type inBrowser struct {
	firefox bool
	url     string
}

// openMixed opens the pages in their browsers, named "firefox 1",
// "chromium 1", ..., and waits until each has joined.
func openMixed(t *testing.T, b *chromium, fx *firefox, specs []inBrowser) []*page {
	t.Helper()
	ps := make([]*page, len(specs))
	count := map[bool]int{}
	for i, s := range specs {
		count[s.firefox]++
		if s.firefox {
			ps[i] = openFirefoxPage(t, fx, fmt.Sprintf("firefox %d", count[true]), s.url)
		} else {
			ps[i] = openPage(t, b, fmt.Sprintf("chromium %d", count[false]), s.url)
		}
		ps[i].waitFor("joining", `check.joined()`)
	}
	return ps
}

// mixedRoom is nFirefox Firefox pages and nChromium Chromium pages, in
// that order, all joining room with query.
func mixedRoom(t *testing.T, b *chromium, fx *firefox, room string, query url.Values, nFirefox, nChromium int) []*page {
	t.Helper()
	var specs []inBrowser
	for i := 0; i < nFirefox+nChromium; i++ {
		specs = append(specs, inBrowser{firefox: i < nFirefox, url: demoURL(room, query)})
	}
	return openMixed(t, b, fx, specs)
}

// firefoxChromiumPair: one page of each, with video: a chat message each
// way, and remote video playing on both.
func firefoxChromiumPair(t *testing.T, b *chromium, fx *firefox) {
	ps := mixedRoom(t, b, fx, "fx-pair", nil, 1, 1)
	fullMesh(t, ps)
}

// firefoxChromiumMesh: two pages of each in a mesh, so every pairing
// (Firefox-Firefox, Firefox-Chromium, Chromium-Chromium) is in it.
func firefoxChromiumMesh(t *testing.T, b *chromium, fx *firefox) {
	ps := mixedRoom(t, b, fx, "fx-mesh", audioOnly, 2, 2)
	fullMesh(t, ps)
}

// firefoxChromiumRelayOnly: a pair that may use relay candidates only, so
// its media goes through the embedded TURN server; then that server is
// replaced under the call and the pair must recover over the new one.
func firefoxChromiumRelayOnly(t *testing.T, b *chromium, fx *firefox) {
	ps := mixedRoom(t, b, fx, "fx-relay", with(audioOnly, "relay", "1"), 1, 1)
	fullMesh(t, ps)
	waitAll(t, ps, "only relay candidates in use", `check.onlyRelay()`)
	// Its own subtest: the recovery needs an ICE restart and renegotiation
	// between the two browsers, which fails apart from the relay itself.
	t.Run("TURN server replaced", func(t *testing.T) {
		replaceTURNServer(t, ps)
	})
}

// replaceTURNServer replaces the TURN server under the pages' call (a new
// realm needs a new server), as sixPagesRelayOnly does, and waits until
// the last page (a Chromium one) notices, then until
// they are all connected again over relays of the new one. The original
// server is back when t ends, for the cases after it.
func replaceTURNServer(t *testing.T, ps []*page) {
	for _, p := range ps {
		p.t = t
	}
	t.Cleanup(func() {
		loadConfig(t, "text/caddyfile", withGlobals(browserGlobals, browserSite(t)), false)
	})
	start := time.Now()
	loadConfig(t, "text/caddyfile", withGlobals(strings.Replace(browserGlobals, "realm localhost", "realm restarted.test", 1), browserSite(t)), false)
	// Chromium notices a dead relay within seconds (consent freshness);
	// Firefox may take much longer, and the recovery is what is tested.
	ps[len(ps)-1].waitFor("the broken relay to be noticed", `check.someNotConnected()`)
	fullMesh(t, ps)
	waitAll(t, ps, "only relay candidates in use after the ICE restart", `check.onlyRelay()`)
	t.Logf("ICE restarted over the new TURN server within %s", time.Since(start).Round(time.Millisecond))
}

// firefoxReloaded: a Firefox page in a call with another Firefox page and
// a Chromium one is reloaded three times; each time it rejoins under a new
// id and the mesh forms again with both browsers.
func firefoxReloaded(t *testing.T, b *chromium, fx *firefox) {
	ps := mixedRoom(t, b, fx, "fx-reload", audioOnly, 2, 1)
	fullMesh(t, ps)
	for i := 1; i <= 3; i++ {
		start := time.Now()
		reload(t, ps[0])
		fullMesh(t, ps)
		t.Logf("reload %d: the mesh formed again %s after it", i, time.Since(start).Round(time.Millisecond))
	}
}

// firefoxOnSSE: a Firefox page that signals over Server-Sent Events
// (?transports=sse) calls a Chromium page on a WebSocket.
func firefoxOnSSE(t *testing.T, b *chromium, fx *firefox) {
	ps := openMixed(t, b, fx, []inBrowser{
		{firefox: true, url: demoURL("fx-sse", with(audioOnly, "transports", "sse"))},
		{firefox: false, url: demoURL("fx-sse", audioOnly)},
	})
	ps[0].check("its transport", jsCall("check.transport", "sse"))
	ps[1].check("its transport", jsCall("check.transport", "websocket"))
	fullMesh(t, ps)
}
