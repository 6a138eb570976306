package natshub

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyproc"
)

// Issue 17, sections 5 and 6: the WebSocket protocol and a connection's
// life are one behaviour on every path a peer can take to a session. One
// table of cases runs over every path, so that a difference between paths
// is a failing case. The paths:
//
//   - tcp: ws:// to Caddy A's plain-HTTP site (on Linux read by the event
//     loop, evloop_linux.go and frameread.go);
//   - tls: wss:// to Caddy A's https site (tls internal; read by a
//     goroutine with gorilla's reader);
//   - tunnel: the session is joined on A, its connection dropped without a
//     close frame (away), and resumed on Caddy B, which from then on
//     relays the connection's frames to the session's home, A.
//
// In every case a room-mate, the observer, stays on A (plain ws) to see
// when the subject leaves: at once (an ended session) or only once
// resume_window ran out (a session that went away).

// Lifecycle bounds. The route's ping_interval is 1.5 s, so a peer may
// send nothing for 3 s (pathIdle), and resume_window is 5 s: intervals a
// loaded machine's clients (the observer's pongs) keep within.
const (
	// pathAtOnce: an ended session's peer-left reaches the observer
	// within this of what ended it, well before resume_window.
	pathAtOnce = 2 * time.Second
	// pathAwayQuiet: a session that went away is not seen to leave
	// within this of losing its connection.
	pathAwayQuiet = 3 * time.Second
	// pathCutMin, pathCutMax: a client that sends no message, nor pong, is
	// cut between these after its last message, which here is the
	// welcome: the server starts its idle clock as it sends it. What this
	// table checks on every path is that such a client is cut, and not
	// kept alive by pings or a frame that never ends; the cut's timing to
	// the tick is the transport's unit test's
	// (TestSilencesAreJudgedAlikeOnEveryReader). Two intervals of slack:
	// 1.2 s was exceeded in CI on the tunnel path, where the cut crosses a
	// loaded machine's three processes (800 ms had been, with four
	// race-enabled suites sharing 2 cores).
	pathCutMin = pathIdle - 200*time.Millisecond
	pathCutMax = pathIdle + 2*pathPing
	// pathTrickle is how often a client keeping itself busy without
	// messages (pings, one byte of a frame) writes.
	pathTrickle = 300 * time.Millisecond
)

// pathSubject is one case's client and its room-mate.
type pathSubject struct {
	*pathConn
	obs *pathObserver
}

// endsAtOnce checks that the session ended: the observer sees it leave
// within pathAtOnce of since, when what happened. A later peer-left is
// waited for, to say when it came.
func (x *pathSubject) endsAtOnce(since time.Time, what string) {
	x.t.Helper()
	at, ok := x.obs.peerLeft(x.id, since.Add(pathResume+pathWait))
	switch {
	case !ok:
		x.t.Fatalf("after %s the observer got no peer-left at all within %s", what, pathResume+pathWait)
	case at.Sub(since) > pathAtOnce:
		x.t.Fatalf("after %s the observer got peer-left %s later, want within %s: the session went away instead of ending",
			what, at.Sub(since).Round(time.Millisecond), pathAtOnce)
	}
	x.t.Logf("peer-left %s after %s", at.Sub(since).Round(time.Millisecond), what)
}

// goesAway checks that the session went away when its connection was lost
// (since, after what): the observer sees nothing for pathAwayQuiet (the
// wait is the case), then peer-left once resume_window ran out.
func (x *pathSubject) goesAway(since time.Time, what string) {
	x.t.Helper()
	if at, ok := x.obs.peerLeft(x.id, since.Add(pathAwayQuiet)); ok {
		x.t.Fatalf("after %s the observer got peer-left %s later, want none before resume_window (%s): the session ended instead of going away",
			what, at.Sub(since).Round(time.Millisecond), pathResume)
	}
	at, ok := x.obs.peerLeft(x.id, since.Add(pathResume+pathWait))
	if !ok {
		x.t.Fatalf("after %s the observer got no peer-left within %s: the session outlived resume_window (%s)",
			what, pathResume+pathWait, pathResume)
	}
	x.t.Logf("peer-left %s after %s (resume_window %s)", at.Sub(since).Round(time.Millisecond), what, pathResume)
}

// cutIdle waits for the server to cut a client that sends no message nor
// pong, calling busy every pathTrickle meanwhile (when not nil), and
// checks when the cut came; it returns that time.
func (x *pathSubject) cutIdle(busy func()) time.Time {
	x.t.Helper()
	tick := time.NewTicker(pathTrickle)
	defer tick.Stop()
	timeout := time.NewTimer(time.Until(x.welcomed.Add(pathCutMax)))
	defer timeout.Stop()
	for {
		select {
		case e, ok := <-x.events:
			switch {
			case !ok:
				x.t.Fatal("the connection had ended already")
			case e.kind == pathGotFrame:
				x.t.Fatalf("got %s, want nothing but pings and pongs", e)
			case e.kind == pathGotEnd:
				after := e.at.Sub(x.welcomed)
				if after < pathCutMin {
					x.t.Fatalf("cut %s after the welcome by %s, want %s-%s after it",
						after.Round(time.Millisecond), e, pathCutMin, pathCutMax)
				}
				x.t.Logf("cut %s after the welcome, by %s", after.Round(time.Millisecond), e)
				return e.at
			}
		case <-tick.C:
			if busy != nil {
				busy()
			}
		case <-timeout.C:
			// An end the reader saw in time may be waiting behind this
			// timer on a loaded machine (select picks either): its time,
			// taken as the reader saw it, is what counts.
			if e, ok := x.pendingEnd(); ok && e.at.Sub(x.welcomed) <= pathCutMax {
				x.t.Logf("cut %s after the welcome, by %s (seen late)", e.at.Sub(x.welcomed).Round(time.Millisecond), e)
				return e.at
			}
			x.t.Fatalf("still connected %s after the welcome, want a cut %s-%s after it",
				pathCutMax, pathCutMin, pathCutMax)
		}
	}
}

// pendingEnd takes the events already waiting, without waiting, and
// returns the end of the connection if it is among them.
func (x *pathSubject) pendingEnd() (pathEvent, bool) {
	for {
		select {
		case e, ok := <-x.events:
			if !ok {
				return pathEvent{}, false
			}
			if e.kind == pathGotEnd {
				return e, true
			}
		default:
			return pathEvent{}, false
		}
	}
}

// pathCase is a row of the table: what the subject does, and what must
// follow on every path.
type pathCase struct {
	name   string
	silent bool // the subject answers no ping
	run    func(x *pathSubject)
}

var pathCases = []pathCase{
	{name: "close-1000", run: func(x *pathSubject) {
		at := x.sendClose(1000)
		x.expectClose(1000)
		x.endsAtOnce(at, "close 1000")
	}},
	{name: "close-4000", run: func(x *pathSubject) {
		at := x.sendClose(4000)
		x.expectClose(4000)
		x.goesAway(at, "close 4000")
	}},
	{name: "close-1014-invalid", run: func(x *pathSubject) {
		// gorilla/websocket takes 1000-1003, 1007-1013 and 3000-4999.
		at := x.sendClose(1014)
		x.expectClose(websocket.CloseProtocolError)
		x.endsAtOnce(at, "close 1014")
	}},
	{name: "close-1012", run: func(x *pathSubject) {
		at := x.sendClose(1012)
		x.expectClose(1012)
		x.goesAway(at, "close 1012")
	}},
	{name: "length-top-bit", run: func(x *pathSubject) {
		// The header alone: the server judges it before any payload.
		x.mustWrite(pathFrame{op: websocket.TextMessage, length: 1<<63 | 16, lengthSet: true, len64: true}.bytes())
		at := time.Now()
		x.expectClose(websocket.CloseProtocolError)
		x.endsAtOnce(at, "a 64-bit length with its top bit set")
	}},
	{name: "unmasked", run: func(x *pathSubject) {
		x.mustWrite(pathFrame{op: websocket.TextMessage, unmasked: true, payload: []byte(`{"type":"ping"}`)}.bytes())
		at := time.Now()
		x.expectClose(websocket.CloseProtocolError)
		x.endsAtOnce(at, "an unmasked frame")
	}},
	{name: "rsv1", run: func(x *pathSubject) {
		x.mustWrite(pathFrame{op: websocket.TextMessage, rsv: 0x40, payload: []byte(`{"type":"ping"}`)}.bytes())
		at := time.Now()
		x.expectClose(websocket.CloseProtocolError)
		x.endsAtOnce(at, "RSV1 set")
	}},
	{name: "ping-burst", run: func(x *pathSubject) {
		var burst []byte
		for _, p := range []string{"a", "b", "c", "d", "e"} {
			burst = append(burst, pathFrame{op: websocket.PingMessage, payload: []byte(p)}.bytes()...)
		}
		x.mustWrite(burst)
		// The pong to a message sent after the burst comes after the
		// pongs to it.
		pongs := x.pingPong()
		if len(pongs) == 0 || pongs[len(pongs)-1] != "e" {
			x.t.Fatalf("pongs %q to the pings a-e, want at least one, the last carrying \"e\"", pongs)
		}
		x.t.Logf("pongs %q to the pings a-e", pongs)
	}},
	{name: "fragmented-signal", run: func(x *pathSubject) {
		x.mustWrite(pathFrame{op: websocket.TextMessage, more: true, payload: []byte(`{"type":"signal",`)}.bytes())
		x.mustWrite(pathFrame{op: websocket.PingMessage, payload: []byte("mid")}.bytes())
		x.mustWrite(pathFrame{op: 0, more: true, payload: fmt.Appendf(nil, `"to":%q,`, x.obs.id)}.bytes())
		x.mustWrite(pathFrame{op: 0, payload: []byte(`"data":{"sdp":"fragments"}}`)}.bytes())
		e, ok := x.obs.await(time.Now().Add(pathWait), func(f seqFrame) bool { return f.Type == "signal" })
		if !ok {
			x.t.Fatalf("the observer got no signal within %s", pathWait)
		}
		if e.f.From != x.id || string(e.f.Data) != `{"sdp":"fragments"}` {
			x.t.Fatalf("the observer got %s, want the signal from %s with data {\"sdp\":\"fragments\"}", e, x.id)
		}
		if pongs := x.pingPong(); !slices.Contains(pongs, "mid") {
			x.t.Fatalf("pongs %q, want one to the ping between the fragments", pongs)
		}
	}},
	{name: "too-large", run: func(x *pathSubject) {
		big := `{"type":"broadcast","data":"` + strings.Repeat("x", pathMaxSize) + `"}`
		x.mustWrite(pathText(big))
		at := time.Now()
		x.expectError("too_large")
		x.expectClose(4413)
		x.endsAtOnce(at, "a message over max_message_size")
	}},
	{name: "binary", run: func(x *pathSubject) {
		// The ping behind it is answered after it.
		x.mustWrite(pathFrame{op: websocket.BinaryMessage, payload: []byte(`{"type":"ping"}`)}.bytes())
		x.mustWrite(pathText(`{"type":"ping"}`))
		x.expectError("bad_message")
		x.expect("pong")
		x.pingPong()
	}},
	{name: "silent", silent: true, run: func(x *pathSubject) {
		at := x.cutIdle(nil)
		x.goesAway(at, "the cut")
	}},
	{name: "pings-only", silent: true, run: func(x *pathSubject) {
		ping := pathFrame{op: websocket.PingMessage, payload: []byte("p")}.bytes()
		x.cutIdle(func() { _ = x.write(ping) })
	}},
	{name: "trickle", silent: true, run: func(x *pathSubject) {
		// A text frame of 1000 bytes, one byte at a time: never finished.
		frame := pathText(strings.Repeat(" ", 1000))
		x.cutIdle(func() {
			_ = x.write(frame[:1])
			frame = frame[1:]
		})
	}},
	{name: "pongs-are-life", run: func(x *pathSubject) {
		// The wait is the case: pings answered for well over the idle
		// time, and nothing else.
		pings := 0
		for end := x.welcomed.Add(pathIdle + 2*time.Second); ; {
			e, ok := x.next(end)
			if !ok {
				break
			}
			switch e.kind {
			case pathGotPing:
				pings++
			case pathGotFrame, pathGotEnd:
				x.t.Fatalf("got %s %s after the welcome, want nothing but pings", e, e.at.Sub(x.welcomed).Round(time.Millisecond))
			}
		}
		if pings < 3 {
			x.t.Fatalf("%d pings in %s, want one every %s", pings, pathIdle+2*time.Second, pathPing)
		}
		if at, ok := x.obs.leftSoFar(x.id); ok {
			x.t.Fatalf("the observer got peer-left %s after the welcome", at.Sub(x.welcomed).Round(time.Millisecond))
		}
		x.pingPong()
	}},
	{name: "invalid-utf8", run: func(x *pathSubject) {
		x.mustWrite(pathText("{\"type\":\"ping\",\"x\":\"\xff\xfe\"}"))
		x.mustWrite(pathText(`{"type":"ping"}`))
		x.expectError("bad_message")
		x.expect("pong")
		x.pingPong()
	}},
}

// pathKind is a path: connect joins room (the observer being in it
// already) and returns the subject's connection with its session's id.
type pathKind struct {
	name    string
	connect func(t *testing.T, room string, obs *pathObserver, silent bool) *pathConn
}

// TestPaths runs the table over every path. One NATS and two Caddies serve
// the whole table, each case in its own room; the paths run in parallel,
// their cases one after the other.
func TestPaths(t *testing.T) {
	srv := startNATS(t)
	route := pathRoute(srv.URL(), fmt.Sprint("paths", prefixes.Add(1)))
	a, tlsPort := pathStartCaddy(t, route, true)
	b, _ := pathStartCaddy(t, route, false)
	tlsDialer := pathTLSDialer(tlsPort)
	tlsURL := func(room string) string { return fmt.Sprintf("wss://localhost:%d/ws?room=%s", tlsPort, room) }
	// Every site admits peers before the cases start: NATS is ready, and
	// the https site has its certificate.
	for _, p := range []*caddyproc.Proc{a, b} {
		cl, _ := joinEventually(t, p, "warmup", 15*time.Second)
		leaveNow(cl.c)
	}
	eventually(t, 15*time.Second, "the https site admitting a peer", func() bool {
		c, _, err := tlsDialer.Dial(tlsURL("warmup"), nil)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(pathWait))
		f, err := first(c)
		return err == nil && f.Type == "welcome"
	})

	// joinVia joins on the connection the dialer makes to u.
	joinVia := func(t *testing.T, d *websocket.Dialer, u string, obs *pathObserver, silent bool) *pathConn {
		t.Helper()
		c := pathDial(t, d, u, silent)
		c.id = c.expectWelcome().ID
		obs.joined(c.id)
		return c
	}
	paths := []pathKind{
		{"tcp", func(t *testing.T, room string, obs *pathObserver, silent bool) *pathConn {
			return joinVia(t, pathPlainDialer, wsURL(a, room), obs, silent)
		}},
		{"tls", func(t *testing.T, room string, obs *pathObserver, silent bool) *pathConn {
			return joinVia(t, tlsDialer, tlsURL(room), obs, silent)
		}},
		{"tunnel", func(t *testing.T, room string, obs *pathObserver, silent bool) *pathConn {
			t.Helper()
			home, err := dialRaw(t, a, room)
			if err != nil {
				t.Fatal(err)
			}
			w := readSeq(t, home)
			if w.Type != "welcome" || w.Resume == "" {
				t.Fatalf("welcome on A %+v", w)
			}
			obs.joined(w.ID)
			// Lost without a close frame: the session is away on A.
			home.UnderlyingConn().Close()
			u := fmt.Sprintf("%s&resume=%s&last_seq=%d", wsURL(b, room), url.QueryEscape(w.Resume), w.Seq)
			c := pathDial(t, pathPlainDialer, u, silent)
			if rw := c.expectWelcome(); !rw.Resumed || rw.ID != w.ID {
				t.Fatalf("welcome on B %+v, want the session %s resumed", rw, w.ID)
			}
			c.id = w.ID
			return c
		}},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			for i, tc := range pathCases {
				t.Run(fmt.Sprintf("%02d-%s", i+1, tc.name), func(t *testing.T) {
					room := fmt.Sprintf("paths-%s-%02d", p.name, i+1)
					obs := pathObserve(t, a, room)
					tc.run(&pathSubject{pathConn: p.connect(t, room, obs, tc.silent), obs: obs})
				})
			}
		})
	}
}
