package natshub

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyproc"
	"github.com/caddy-webrtc/caddy-webrtc/internal/natstest"
)

// Helpers of the hostile-client tests (issue 17): Caddy processes with
// the route options a case needs, dialers with socket options, sessions
// resumed through another Caddy, processes stopped with SIGSTOP, and the
// NATS server's message counter.

// hostileRoute is the signaling route of one Caddy process.
type hostileRoute struct {
	natsURL     string        // "": the memory backend
	prefix      string        // with natsURL
	nodeTimeout time.Duration // with natsURL; 0: testNodeTimeout
	// lines are more options of the route, e.g. "resume_window 4s" or a
	// limits block; none: every default.
	lines []string
}

// hostileLimitsOff is a limits block that keeps the frame rate and the
// connections per IP out of a test's way.
const hostileLimitsOff = "limits {\nframes_per_second 100000\nburst 100000\nconnections_per_ip 100000\n}"

// hostileStart runs a Caddy process serving r at ws://127.0.0.1:<port>/ws
// (bound to 127.0.0.1 only).
func hostileStart(t testing.TB, r hostileRoute) *caddyproc.Proc {
	t.Helper()
	var route strings.Builder
	for _, l := range r.lines {
		fmt.Fprintf(&route, "\t\t%s\n", l)
	}
	if r.natsURL != "" {
		if r.nodeTimeout == 0 {
			r.nodeTimeout = testNodeTimeout
		}
		fmt.Fprintf(&route, "\t\tbackend nats {\n\t\t\turl %s\n\t\t\tprefix %s\n\t\t\tnode_timeout %s\n\t\t}\n",
			r.natsURL, r.prefix, r.nodeTimeout)
	}
	return caddyproc.Start(t, func(port int) string {
		return fmt.Sprintf("http://127.0.0.1:%d {\n\tbind 127.0.0.1\n\twebrtc_signaling /ws* {\n%s\t}\n}\n", port, route.String())
	})
}

// hostilePair runs two Caddy processes with the route options lines on
// the NATS at natsURL, under a fresh prefix and with node_timeout
// testNodeTimeout, and waits until both admit peers (their first join
// connects them to NATS).
func hostilePair(t testing.TB, natsURL string, lines ...string) (*caddyproc.Proc, *caddyproc.Proc) {
	t.Helper()
	return hostilePairTimeouts(t, natsURL, testNodeTimeout, testNodeTimeout, lines...)
}

// hostilePairTimeouts is hostilePair with node_timeout ta for the first
// process and tb for the second.
func hostilePairTimeouts(t testing.TB, natsURL string, ta, tb time.Duration, lines ...string) (*caddyproc.Proc, *caddyproc.Proc) {
	t.Helper()
	r := hostileRoute{natsURL: natsURL, prefix: fmt.Sprint("hostile", prefixes.Add(1)), lines: lines}
	ra, rb := r, r
	ra.nodeTimeout, rb.nodeTimeout = ta, tb
	a, b := hostileStart(t, ra), hostileStart(t, rb)
	for _, p := range []*caddyproc.Proc{a, b} {
		cl, _ := joinEventually(t, p, "warmup", 15*time.Second)
		leaveNow(cl.c)
	}
	return a, b
}

// hostileDialer dials from local (nil: any address) and, when rcvbuf > 0,
// sets the socket's receive buffer to rcvbuf bytes before it connects, so
// that the window the peer may fill stays small.
func hostileDialer(local net.IP, rcvbuf int) *websocket.Dialer {
	nd := &net.Dialer{Timeout: 10 * time.Second}
	if local != nil {
		nd.LocalAddr = &net.TCPAddr{IP: local}
	}
	if rcvbuf > 0 {
		nd.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	return &websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 10 * time.Second}
}

// errHostile429 is an upgrade refused with 429 (connections_per_ip).
var errHostile429 = errors.New("upgrade refused with 429")

// hostileDial connects to u with d; the connection is closed when the test
// ends.
func hostileDial(t testing.TB, d *websocket.Dialer, u string) (*websocket.Conn, error) {
	c, resp, err := d.Dial(u, nil)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			return nil, errHostile429
		}
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// hostileJoin connects to room on p with d and reads the welcome.
func hostileJoin(t testing.TB, d *websocket.Dialer, p *caddyproc.Proc, room string) *client {
	t.Helper()
	c, err := hostileDial(t, d, wsURL(p, room))
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{t: t, c: c}
	w := cl.expect("welcome")
	cl.id = w.ID
	for _, m := range w.Peers {
		cl.peers = append(cl.peers, m.ID)
	}
	return cl
}

// hostileReset closes c's TCP connection with a reset: no close frame,
// no FIN.
func hostileReset(c *websocket.Conn) {
	if tc, ok := c.UnderlyingConn().(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.UnderlyingConn().Close()
}

// hostileTunnelled joins room on home, cuts that connection, and resumes
// the session on front, which then tunnels to home: the returned client's
// connection is to front, its id the session's.
func hostileTunnelled(t *testing.T, home, front *caddyproc.Proc, room string) *client {
	t.Helper()
	c, err := dialRaw(t, home, room)
	if err != nil {
		t.Fatal(err)
	}
	w := readSeq(t, c)
	if w.Type != "welcome" || w.Resume == "" {
		t.Fatalf("welcome %+v", w)
	}
	c.UnderlyingConn().Close()
	u := fmt.Sprintf("%s&resume=%s&last_seq=%d", wsURL(front, room), url.QueryEscape(w.Resume), w.Seq)
	fc, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close() })
	rw := readSeq(t, fc)
	if rw.Type != "welcome" || !rw.Resumed || rw.ID != w.ID {
		t.Fatalf("resume through the other Caddy: %+v, want a resumed welcome for %s", rw, w.ID)
	}
	return &client{t: t, c: fc, id: w.ID}
}

// hostileSignal sends p's process sig.
func hostileSignal(t testing.TB, p *caddyproc.Proc, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(p.PID(), sig); err != nil {
		t.Fatalf("signal %v to pid %d: %v", sig, p.PID(), err)
	}
}

// hostileFreeze stops p with SIGSTOP (a host that vanished: its sockets
// stay open, nothing answers); it is continued before the process is
// killed at the end of the test.
func hostileFreeze(t testing.TB, p *caddyproc.Proc) {
	t.Helper()
	hostileSignal(t, p, syscall.SIGSTOP)
	t.Cleanup(func() { _ = syscall.Kill(p.PID(), syscall.SIGCONT) })
}

// hostileInMsgs is the number of messages clients have published to srv.
func hostileInMsgs(t testing.TB, srv *natstest.Server) int64 {
	t.Helper()
	v, err := srv.Srv.Varz(nil)
	if err != nil {
		t.Fatal(err)
	}
	return v.InMsgs
}

// hostileSettled waits until srv's message counter stops moving (at most
// two messages in 300 ms: the Caddies' heartbeats) and returns it.
func hostileSettled(t testing.TB, srv *natstest.Server) int64 {
	t.Helper()
	last := hostileInMsgs(t, srv)
	var n int64
	eventually(t, 30*time.Second, "NATS traffic settling", func() bool {
		time.Sleep(300 * time.Millisecond) // the interval the rate is taken over
		n = hostileInMsgs(t, srv)
		quiet := n-last <= 2
		last = n
		return quiet
	})
	return n
}

// hostileFrame is a frame a recorder read, and when.
type hostileFrame struct {
	seqFrame
	raw string
	at  time.Time
}

// hostileRecorder reads a connection's frames on a goroutine of its own
// until the connection fails (the test's end closes it), keeping each with
// the time it arrived; tests look at them with view.
type hostileRecorder struct {
	mu     sync.Mutex
	frames []hostileFrame
	err    error
	errAt  time.Time
}

func hostileRecord(c *websocket.Conn) *hostileRecorder {
	r := &hostileRecorder{}
	go func() {
		for {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Minute))
			_, b, err := c.ReadMessage()
			at := time.Now()
			r.mu.Lock()
			if err != nil {
				r.err, r.errAt = err, at
				r.mu.Unlock()
				return
			}
			f := hostileFrame{raw: string(b), at: at}
			_ = json.Unmarshal(b, &f.seqFrame)
			r.frames = append(r.frames, f)
			r.mu.Unlock()
		}
	}()
	return r
}

// view runs fn on the frames read so far and the error the reading ended
// with (nil while it goes on).
func (r *hostileRecorder) view(fn func(frames []hostileFrame, err error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r.frames, r.err)
}

// count is the number of frames read so far for which match holds.
func (r *hostileRecorder) count(match func(hostileFrame) bool) int {
	n := 0
	r.view(func(frames []hostileFrame, _ error) {
		for _, f := range frames {
			if match(f) {
				n++
			}
		}
	})
	return n
}

// find is the first frame read for which match holds.
func (r *hostileRecorder) find(match func(hostileFrame) bool) (hostileFrame, bool) {
	var out hostileFrame
	found := false
	r.view(func(frames []hostileFrame, _ error) {
		for _, f := range frames {
			if match(f) {
				out, found = f, true
				return
			}
		}
	})
	return out, found
}

// failed is the error the reading ended with, nil while it goes on.
func (r *hostileRecorder) failed() error {
	var err error
	r.view(func(_ []hostileFrame, e error) { err = e })
	return err
}

// hostileCloseCode is the close code err carries, or 0.
func hostileCloseCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// hostileUntilClosed reads c until its connection ends, within d, and
// returns the error it ended with and how long that took; frames before
// it go to seen.
func hostileUntilClosed(c *websocket.Conn, d time.Duration, seen func(seqFrame)) (time.Duration, error) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			return time.Since(start), err
		}
		var f seqFrame
		if json.Unmarshal(b, &f) == nil && seen != nil {
			seen(f)
		}
	}
}

// hostileAwait reads cl's frames until one of type typ about (or from)
// id, skipping every other frame, within d; it returns how long that took.
func hostileAwait(cl *client, typ, id string, d time.Duration) time.Duration {
	cl.t.Helper()
	start := time.Now()
	_ = cl.c.SetReadDeadline(start.Add(d))
	for {
		var f wireFrame
		if err := cl.c.ReadJSON(&f); err != nil {
			cl.t.Fatalf("%s waiting for %s of %s: %v after %s", cl.id, typ, id, err, time.Since(start).Round(time.Millisecond))
		}
		if f.Type == typ && (f.ID == id || f.From == id) {
			return time.Since(start)
		}
	}
}

// hostilePercentile is the p-th percentile (0 < p <= 100) of ds, nearest
// rank.
func hostilePercentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// hostileNATSProcess runs nats-server (built from the module's
// nats-server/v2, without the race detector) as a process of its own,
// with JetStream, on a free loopback port, and returns its URL: a case
// that measures latency under load should not have the broker share the
// test binary's instrumented code and its CPU.
func hostileNATSProcess(t testing.TB) string {
	t.Helper()
	bin := caddyproc.Build(t, "github.com/nats-io/nats-server/v2")
	dir := t.TempDir()
	port := caddyproc.FreePort(t)
	caddyproc.Run(t, dir, port, bin, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", dir,
		"-l", filepath.Join(dir, "nats.log")) // not in the log shown when a test fails

	return fmt.Sprintf("nats://127.0.0.1:%d", port)
}

// hostileRawText is a client's text frame carrying payload, masked with
// the all-zero key (valid, if not unpredictable), so that writing it costs
// the test no masking: a flood's bytes then go out at the socket's pace.
func hostileRawText(payload []byte) []byte {
	var hdr []byte
	switch n := len(payload); {
	case n < 126:
		hdr = []byte{0x81, 0x80 | byte(n)}
	case n < 1<<16:
		hdr = []byte{0x81, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		hdr = []byte{0x81, 0x80 | 127, 0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	hdr = append(hdr, 0, 0, 0, 0) // the masking key
	return append(hdr, payload...)
}

// hostileRawConn writes whole frames straight to a gorilla connection's
// socket; its pongs (written by the reading goroutine) go out between
// them, never inside one.
type hostileRawConn struct {
	c  *websocket.Conn
	mu sync.Mutex
}

// hostileRaw takes over c's writing; call it before c is read from.
func hostileRaw(c *websocket.Conn) *hostileRawConn {
	w := &hostileRawConn{c: c}
	c.SetPingHandler(func(data string) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	return w
}

// write sends one frame made by hostileRawText.
func (w *hostileRawConn) write(frame []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.c.UnderlyingConn().SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := w.c.UnderlyingConn().Write(frame)
	return err
}
