//go:build linux

package ws

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/ws/evloop"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// The readers a joined peer's bytes can go through: the event loop (plain
// TCP on Linux) and a goroutine of the connection's own, over plain TCP
// (what other systems do) and under TLS (what Caddy's HTTPS sites do).
// Each case below runs over all three: a difference is a failing test.
var readerPaths = []struct {
	name  string
	loops bool // the event loop may read plain TCP connections
	tls   bool
}{
	{"loop", true, false},
	{"own", false, false},
	{"tls", false, true},
}

// pathServer is a bench server on one reader path, whose peers must show
// life every 2*ping.
func pathServer(t *testing.T, withLoops, useTLS bool, ping time.Duration) (url string, dialer *websocket.Dialer, h *server) {
	t.Helper()
	if !withLoops {
		t.Cleanup(evloop.Restrict(0))
	}
	var cfg *tls.Config
	wrap := func(l net.Listener) net.Listener { return l }
	if useTLS {
		// A throwaway TLS server's certificate, for ours.
		tmp := httptest.NewUnstartedServer(http.NotFoundHandler())
		tmp.StartTLS()
		cfg = tmp.TLS.Clone()
		tmp.Close()
		wrap = func(l net.Listener) net.Listener { return tls.NewListener(l, cfg) }
	}
	srv, h := newBenchServerOn(t, wrap)
	h.PingInterval = ping
	h.ResumeWindow = time.Minute
	scheme, d := "ws", *websocket.DefaultDialer
	if useTLS {
		scheme = "wss"
		d.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return scheme + strings.TrimPrefix(srv.URL, "http"), &d, h
}

// silentPeer joins room without answering the server's pings, and
// returns the connection and a channel that tells when the server cut it.
func silentPeer(t *testing.T, url string, d *websocket.Dialer, room string) (*websocket.Conn, <-chan time.Time) {
	t.Helper()
	ws, _, err := d.Dial(url+"/?room="+room, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	ws.SetPingHandler(func(string) error { return nil })
	if _, _, err := ws.ReadMessage(); err != nil { // the welcome
		t.Fatal(err)
	}
	cut := make(chan time.Time, 1)
	go func() {
		_ = readUntilError(ws)
		cut <- time.Now()
	}()
	return ws, cut
}

// Only a whole message or a pong is a sign of life: a peer that sends
// nothing, only pings, or a frame that never ends is cut after two ping
// intervals, on every reader; one that answers pings is not.
func TestSilencesAreJudgedAlikeOnEveryReader(t *testing.T) {
	const ping = 250 * time.Millisecond
	idle := 2 * ping
	behaviours := map[string]func(ws *websocket.Conn, stop <-chan time.Time){
		"silent": func(*websocket.Conn, <-chan time.Time) {},
		"pings only": func(ws *websocket.Conn, stop <-chan time.Time) {
			for {
				if ws.WriteControl(websocket.PingMessage, []byte("x"), time.Now().Add(time.Second)) != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(idle / 6):
				}
			}
		},
		"a frame that never ends": func(ws *websocket.Conn, stop <-chan time.Time) {
			wire := clientFrame(newTestRand(), websocket.TextMessage, true, []byte(`{"type":"ping"}`))
			for _, b := range wire[:len(wire)-1] {
				if _, err := ws.NetConn().Write([]byte{b}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(idle / 6):
				}
			}
		},
	}
	for _, p := range readerPaths {
		t.Run(p.name, func(t *testing.T) {
			url, d, _ := pathServer(t, p.loops, p.tls, ping)
			for name, behave := range behaviours {
				ws, cut := silentPeer(t, url, d, "silence")
				start := time.Now()
				go behave(ws, cut)
				select {
				case at := <-cut:
					// Cut at idle after its last sign of life (its wstest.Join, a
					// little before start), give or take the clock's firing.
					if took := at.Sub(start); took < idle-ping/2 || took > idle+4*ping {
						t.Errorf("%s: cut after %v, want about %v", name, took, idle)
					}
				case <-time.After(idle + 10*ping):
					t.Errorf("%s: still connected after %v", name, idle+10*ping)
				}
			}
			// A peer that answers pings (gorilla's reader does) stays.
			ws, _, err := d.Dial(url+"/?room=alive", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			_ = ws.SetReadDeadline(time.Now().Add(3 * idle))
			for {
				_, _, err := ws.ReadMessage()
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // our own deadline: it was connected all along
				}
				if err != nil {
					t.Fatalf("a peer answering pings was cut: %v", err)
				}
			}
		})
	}
}

// A protocol error ends the session at once, on every reader: the
// room-mate sees peer-left, although a lost connection would be away for
// the resume window (a minute here).
func TestAProtocolErrorEndsTheSessionOnEveryReader(t *testing.T) {
	for _, p := range readerPaths {
		t.Run(p.name, func(t *testing.T) {
			url, d, _ := pathServer(t, p.loops, p.tls, time.Minute)
			mate, _, err := d.Dial(url+"/?room=proto", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer mate.Close()
			_, _, _ = mate.ReadMessage() // welcome
			bad, _, err := d.Dial(url+"/?room=proto", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close()
			_, _, _ = bad.ReadMessage()  // welcome
			_, _, _ = mate.ReadMessage() // peer-joined
			// A close code no peer may send (1014 is for gateways).
			if err := bad.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1014, ""), time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			var ce *websocket.CloseError
			if err := readUntilError(bad); !errors.As(err, &ce) || ce.Code != websocket.CloseProtocolError {
				t.Fatalf("after close 1014: %v, want 1002", err)
			}
			_ = mate.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := mate.ReadMessage()
			if err != nil || !strings.Contains(string(b), `"peer-left"`) {
				t.Fatalf("the room-mate got %s, %v; want peer-left at once", b, err)
			}
		})
	}
}

// A connection closed before its reader started (displaced, taken over,
// the hub shut down, between the welcome and the event loop's add) is
// still cut closeGrace after its close frame when its peer ignores it.
func TestAConnectionClosedBeforeItsReaderIsStillCut(t *testing.T) {
	for _, p := range readerPaths[:2] {
		t.Run(p.name, func(t *testing.T) {
			url, d, _ := pathServer(t, p.loops, false, time.Minute)
			hook := func(c *Conn) {
				c.role.sess().End(wire.CloseGoingAway, "test", false)
				<-c.finished // its close frame is out before its reader starts
			}
			testHookOpened.Store(&hook)
			t.Cleanup(func() { testHookOpened.Store(nil) })
			ws, _, err := d.Dial(url+"/?room=early", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			start := time.Now()
			frame := clientFrame(newTestRand(), websocket.TextMessage, true, []byte(`{"type":"ping"}`))
			for time.Since(start) < 5*session.CloseGrace {
				if _, err := ws.NetConn().Write(frame); err != nil {
					return
				}
				time.Sleep(10 * time.Millisecond) // a peer sending on: the case itself
			}
			t.Fatalf("a peer ignoring the close was still connected after %v", 5*session.CloseGrace)
		})
	}
}
