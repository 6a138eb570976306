//go:build linux

package caddytest

import (
	"fmt"
	"net/url"
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
)

// Cases of issue 7: a full room survives reloads, and the mesh always
// re-forms completely after signaling drops, also while CPU is scarce.

const (
	// reloads of one page in a full room.
	reloads = 20
	// cutPages are the pages whose signaling goes through a cutProxy.
	cutPages = 3
	// cutsClientPing is the client ping (pingIntervalMs) of the cut
	// case's pages: a page notices a silent cut within two of them, plus
	// its backoff. cutsServerPing is the server's ping_interval on /cuts:
	// it notices within two of its own, which is later, so a page comes
	// back while the server still holds its old session, as with the
	// defaults (20s in the client, 30s in the server), and must take its
	// seat over with its session token in a full room.
	cutsClientPing = "1000"
	cutsServerPing = "3s"
)

// cutRounds are the cuts of the cut case, one per round, applied to
// every proxied page: the last mixes both kinds in one round.
var cutRounds = [][]cutMode{
	{cutAbrupt, cutAbrupt, cutAbrupt},
	{cutSilent, cutSilent, cutSilent},
	{cutAbrupt, cutSilent, cutAbrupt},
	{cutSilent, cutAbrupt, cutSilent},
}

// reloadInFullRoom reloads one page of a full room again and again; it must
// get back in at once every time (never room_full) and the others must see
// the mesh re-form. Every other reload happens after its signaling socket
// was cut silently, so that the server still holds its old session and its
// seat: only the session token it presents can get it back in.
func reloadInFullRoom(t *testing.T, b *chromium) {
	ps, proxy := openProxiedRoom(t, b, "reload", audioOnly)
	allConnected(t, ps)
	helloCrossing(t, ps)

	var took []time.Duration
	for i := range reloads {
		mode := "plain"
		if i%2 == 1 {
			mode = "after a silent cut"
			if proxy.cut(cutSilent) == 0 {
				t.Fatalf("reload %d: the page had no signaling connection to cut", i+1)
			}
		}
		start := time.Now()
		reload(t, ps[0])
		allConnected(t, ps)
		helloCrossing(t, ps)
		took = append(took, time.Since(start))
		t.Logf("reload %d (%s): mesh re-formed after %s", i+1, mode, took[i].Round(time.Millisecond))
	}
	t.Logf("%d reloads: back in the mesh after %s", reloads, spread(took))
}

// openProxiedRoom opens a full room on the /proxied route whose first page
// signals through a cutProxy.
func openProxiedRoom(t *testing.T, b *chromium, room string, query url.Values) ([]*page, *cutProxy) {
	t.Helper()
	proxy := newCutProxy(t)
	query = with(query, "ws", siteWS("/proxied/ws"))
	urls := make([]string, pages)
	for i := range urls {
		urls[i] = demoURL(room, query)
	}
	urls[0] = demoURL(room, with(query, "ws", proxy.wsURL("/proxied/ws")))
	return openPages(t, b, urls), proxy
}

// cutsUnderCPUPressure cuts the signaling of some pages, abruptly and
// silently, round after round, while CPU is burnt on purpose: every round,
// the cut pages must rejoin and every page must end up connected to every
// other one, with data crossing.
func cutsUnderCPUPressure(t *testing.T, b *chromium) {
	ps, proxies := openCutRoom(t, b)
	allConnected(t, ps)
	helloCrossing(t, ps)
	steady := ids(ps[cutPages:])

	burnCPU(t)
	burnStart, burnCPUStart := time.Now(), b.cpu()
	for r, modes := range cutRounds {
		cutRound(t, ps, proxies, r, modes)
	}
	t.Logf("while burning, Chromium got %.2f cores", (b.cpu()-burnCPUStart).Seconds()/time.Since(burnStart).Seconds())
	for _, p := range ps {
		reasons, _ := eval[string](p, `check.closeReasons()`)
		t.Logf("%s: signaling closed %s", p.name, reasons)
	}
	// The pages that were not cut kept their sessions: their watchdogs
	// did not mistake scarce CPU for a dead server.
	if now := ids(ps[cutPages:]); !slices.Equal(now, steady) {
		t.Errorf("pages that were not cut rejoined: ids %v, then %v; states%s", steady, now, states(ps))
	}
}

// openCutRoom opens a full room whose first cutPages pages signal through
// proxies of their own, with a fast client ping.
func openCutRoom(t *testing.T, b *chromium) ([]*page, []*cutProxy) {
	query := with(audioOnly, "ping", cutsClientPing, "ws", siteWS("/cuts/ws"))
	proxies := make([]*cutProxy, cutPages)
	urls := make([]string, pages)
	for i := range urls {
		urls[i] = demoURL("cuts", query)
		if i < cutPages {
			proxies[i] = newCutProxy(t)
			urls[i] = demoURL("cuts", with(query, "ws", proxies[i].wsURL("/cuts/ws")))
		}
	}
	return openPages(t, b, urls), proxies
}

// cutRound cuts each proxied page's signaling as modes say, and waits until
// those pages are back (resumed, or joined afresh under new ids from a
// server that cannot resume) and the mesh has re-formed.
func cutRound(t *testing.T, ps []*page, proxies []*cutProxy, r int, modes []cutMode) {
	t.Helper()
	start := time.Now()
	joins := make([]int, cutPages)
	for i, p := range ps[:cutPages] {
		joins[i] = p.joins()
	}
	for i, mode := range modes {
		if proxies[i].cut(mode) == 0 {
			t.Fatalf("round %d: page %d had no signaling connection to cut; states%s", r+1, i+1, states(ps))
		}
	}
	for i := range cutPages {
		ps[i].waitFor(fmt.Sprintf("rejoining after the %s cut", modes[i]), jsCall("check.rejoined", joins[i]))
	}
	rejoined := time.Since(start)
	allConnected(t, ps)
	connected := time.Since(start)
	helloCrossing(t, ps)
	t.Logf("round %d %v: rejoined after %s, all connected after %s, data crossing after %s (load %s)", r+1, modes,
		rejoined.Round(time.Millisecond), connected.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), loadAverage())
}

// ids are the pages' client ids.
func ids(ps []*page) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.id()
	}
	return out
}

// burnersPerCore is how many busy loops per core burnCPU runs: with as
// many loops as cores, Chromium's many threads would still get most of
// the machine.
const burnersPerCore = 2

// burnCPU runs busy loops at normal priority until the test ends, so that
// Chromium, the pages and Caddy all get less CPU than they want. They are
// processes of their own (a Go program cannot keep more goroutines running
// than GOMAXPROCS), killed with the test process should it die first.
func burnCPU(t *testing.T) {
	n := burnersPerCore * runtime.NumCPU()
	start := time.Now()
	var loops []*exec.Cmd
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting a busy loop: %v", err)
		}
		loops = append(loops, cmd)
	}
	t.Cleanup(func() {
		var used time.Duration
		for _, cmd := range loops {
			used += processCPU(cmd.Process.Pid)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		t.Logf("%d busy loops on %d cores got %.2f cores", n, runtime.NumCPU(), used.Seconds()/time.Since(start).Seconds())
	})
}

// spread summarises durations as min/median/max.
func spread(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("min %s, median %s, max %s", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}
