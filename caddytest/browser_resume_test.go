//go:build linux

package caddytest

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/caddy-webrtc/caddy-webrtc/signaling"
)

// Cases of issue 11: a page that loses its signaling for a while resumes
// its session without disturbing the call, and pages that cannot use
// WebSockets signal over Server-Sent Events in the same rooms.

// awayFor is how long the resume case keeps a page's signaling down.
const awayFor = 5 * time.Second

// resumeAfterCut: in a six-page call (video, at the test quality), the
// first page's signaling is cut abruptly and its network stays down for
// awayFor. Media keeps flowing on every pair meanwhile and after; the
// page resumes its session (the same id); no page creates a peer
// connection or sees a member join or leave.
func resumeAfterCut(t *testing.T, b *chromium) {
	ps, proxy := openProxiedRoom(t, b, "resume", nil)
	allConnected(t, ps)
	waitAll(t, ps, "media from every peer", jsCall("check.mediaFlowing", len(ps)-1))
	waitAll(t, ps, "watching for disturbances", `check.watch()`)
	waitAll(t, ps, "a mark of the media received", `check.markMedia()`)

	start := time.Now()
	proxy.block(true)
	if proxy.cut(cutAbrupt) == 0 {
		t.Fatalf("page 1 had no signaling connection to cut; states%s", states(ps))
	}
	ps[0].waitFor("the cut to be noticed", `check.offline()`)
	time.Sleep(awayFor - time.Since(start))
	ps[0].check("still away after "+awayFor.String(), `check.offline()`)
	waitAll(t, ps, "media from every peer while page 1 is away", `check.mediaRose()`)
	proxy.block(false)
	ps[0].waitFor("the resume", `check.resumed()`)
	t.Logf("page 1 resumed %s after the cut", time.Since(start).Round(time.Millisecond))

	waitAll(t, ps, "a mark of the media received", `check.markMedia()`)
	waitAll(t, ps, "media from every peer after the resume", `check.mediaRose()`)
	allConnected(t, ps)
	helloCrossing(t, ps)
	waitAll(t, ps, "no peer connection created, no member joining or leaving", `check.undisturbed()`)
	closedTabLeaves(t, ps)
}

// closedTabLeaves closes the last page's tab: its pagehide leaves the room
// at once, so the others see it go long before a lost connection's resume
// window (signaling.DefaultResumeWindow) would have run out.
func closedTabLeaves(t *testing.T, ps []*page) {
	t.Helper()
	last := ps[len(ps)-1]
	start := time.Now()
	if err := chromedp.Cancel(last.ctx); err != nil {
		t.Fatalf("%s: closing its tab: %v", last.name, err)
	}
	allConnected(t, ps[:len(ps)-1])
	took := time.Since(start)
	if took > signaling.DefaultResumeWindow/2 {
		t.Fatalf("the others saw the closed tab leave after %s: it lingered as if its connection were lost", took)
	}
	t.Logf("the others saw the closed tab leave after %s", took.Round(time.Millisecond))
}

// sseFallback: one page is told to use SSE only, and another finds
// WebSockets refused (the /fallback route answers their upgrade with 403
// when the query says nows=1) and falls back to SSE; both mesh with four
// WebSocket pages. Then the SSE-only page, whose stream and POSTs go
// through a cut proxy (to /proxied, which shares the hub), loses its
// connection and resumes over SSE without disturbing the call.
func sseFallback(t *testing.T, b *chromium) {
	proxy := newCutProxy(t)
	query := with(audioOnly, "ws", siteWS("/fallback/ws"))
	urls := make([]string, pages)
	want := make([]string, pages)
	for i := range urls {
		urls[i], want[i] = demoURL("sse", query), "websocket"
	}
	urls[0], want[0] = demoURL("sse", with(query, "transports", "sse", "ws", proxy.wsURL("/proxied/ws"))), "sse"
	urls[1], want[1] = demoURL("sse", with(query, "ws", siteWS("/fallback/ws?nows=1"))), "sse"
	ps := openPages(t, b, urls)
	for i, p := range ps {
		p.check("its transport", jsCall("check.transport", want[i]))
	}
	fullMesh(t, ps)

	waitAll(t, ps, "watching for disturbances", `check.watch()`)
	start := time.Now()
	if proxy.cut(cutAbrupt) == 0 {
		t.Fatalf("page 1 had no connection to cut; states%s", states(ps))
	}
	ps[0].waitFor("the resume over SSE", `check.resumed()`)
	ps[0].check("its transport after the resume", jsCall("check.transport", "sse"))
	t.Logf("page 1 resumed over SSE %s after the cut", time.Since(start).Round(time.Millisecond))
	allConnected(t, ps)
	helloCrossing(t, ps)
	waitAll(t, ps, "no peer connection created, no member joining or leaving", `check.undisturbed()`)
}
