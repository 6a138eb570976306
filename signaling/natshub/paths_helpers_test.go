package natshub

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyproc"
)

// The harness of TestPaths (paths_process_test.go): Caddy processes with
// a plain and an https site, a client that writes raw frames and records
// everything the server sends with the time it came, and a room-mate that
// watches for peer-left.

// The route's timing, as pathRoute configures it.
const (
	pathPing    = 1500 * time.Millisecond // ping_interval
	pathIdle    = 2 * pathPing            // how long a peer may send nothing
	pathResume  = 5 * time.Second         // resume_window
	pathMaxSize = 4 << 10                 // max_message_size
)

// pathWait bounds a wait for something that must come (a frame, a close),
// when how soon does not matter.
const pathWait = 10 * time.Second

// pathRoute is the signaling route every site serves, on the NATS at
// natsURL under prefix.
func pathRoute(natsURL, prefix string) string {
	return fmt.Sprintf(`	webrtc_signaling /ws* {
		ping_interval %s
		resume_window %s
		max_message_size 4KiB
		origins *
		limits {
			frames_per_second 100000
			burst 100000
			connections_per_ip 100000
		}
		backend nats {
			url %s
			prefix %s
			node_timeout %s
		}
	}
`, pathPing, pathResume, natsURL, prefix, testNodeTimeout)
}

// pathGlobals are caddyproc.Globals but for automatic HTTPS: with
// `auto_https off` a `tls internal` site gets no certificate at all (its
// handshakes fail), so only the redirects are off; skip_install_trust keeps
// the local CA's root out of the system's trust stores.
const pathGlobals = `{
	admin off
	auto_https disable_redirects
	skip_install_trust
	storage file_system %s
	log {
		level WARN
	}
}
`

// pathStartCaddy runs a Caddy serving route on a plain-HTTP site at
// 127.0.0.1:<its port> and, when withTLS, on an https site for localhost
// (`tls internal`) on a port of its own, which it returns.
func pathStartCaddy(t *testing.T, route string, withTLS bool) (*caddyproc.Proc, int) {
	t.Helper()
	dir := t.TempDir()
	port := caddyproc.FreePort(t)
	conf := fmt.Sprintf(pathGlobals, filepath.Join(dir, "data"))
	conf += fmt.Sprintf("http://127.0.0.1:%d {\n\tbind 127.0.0.1\n%s}\n", port, route)
	tlsPort := 0
	if withTLS {
		for tlsPort == 0 || tlsPort == port {
			tlsPort = caddyproc.FreePort(t)
		}
		conf += fmt.Sprintf("https://localhost:%d {\n\tbind 127.0.0.1\n\ttls internal\n%s}\n", tlsPort, route)
	}
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := caddyproc.Run(t, dir, port, caddyproc.Binary(t), "run", "--config", file, "--adapter", "caddyfile")
	return p, tlsPort
}

// pathPlainDialer dials ws:// URLs.
var pathPlainDialer = &websocket.Dialer{HandshakeTimeout: pathWait}

// pathTLSDialer dials wss://localhost:<port> URLs at 127.0.0.1, trusting
// whatever certificate the server shows (Caddy's local CA).
func pathTLSDialer(port int) *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: pathWait,
		TLSClientConfig:  &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"},
		NetDialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
		},
	}
}

// pathFrame is a WebSocket frame as a client writes it, or as a broken
// client might: by default final and masked, with the shortest length.
type pathFrame struct {
	op       byte // opcode
	more     bool // FIN clear: fragments follow
	rsv      byte // RSV bits as they sit in the first byte: 0x40 is RSV1
	unmasked bool
	payload  []byte
	// length, when lengthSet, is the length field whatever the payload;
	// len64 has it take the 64-bit form whatever its value.
	length    uint64
	lengthSet bool
	len64     bool
}

// bytes encodes the frame (RFC 6455 5.2).
func (f pathFrame) bytes() []byte {
	b0 := f.op&0x0f | f.rsv&0x70
	if !f.more {
		b0 |= 0x80
	}
	n := uint64(len(f.payload))
	if f.lengthSet {
		n = f.length
	}
	var maskBit byte = 0x80
	if f.unmasked {
		maskBit = 0
	}
	b := []byte{b0}
	switch {
	case f.len64 || n > 0xffff:
		b = binary.BigEndian.AppendUint64(append(b, maskBit|127), n)
	case n > 125:
		b = binary.BigEndian.AppendUint16(append(b, maskBit|126), uint16(n))
	default:
		b = append(b, maskBit|byte(n))
	}
	if f.unmasked {
		return append(b, f.payload...)
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	b = append(b, key[:]...)
	for i, c := range f.payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// pathText is a final, masked text frame carrying s.
func pathText(s string) []byte {
	return pathFrame{op: websocket.TextMessage, payload: []byte(s)}.bytes()
}

// pathCloseFrame is a masked close frame with code (none for 1005).
func pathCloseFrame(code int) []byte {
	var payload []byte
	if code != websocket.CloseNoStatusReceived {
		payload = binary.BigEndian.AppendUint16(nil, uint16(code))
	}
	return pathFrame{op: websocket.CloseMessage, payload: payload}.bytes()
}

// What a pathConn's reader saw.
const (
	pathGotFrame = iota // a data frame
	pathGotPing
	pathGotPong
	pathGotEnd // the connection ended; nothing follows
)

// pathEvent is one thing the server sent, and when it arrived.
type pathEvent struct {
	kind int
	f    seqFrame // a data frame, decoded
	text string   // a data frame's text, or a ping's or pong's payload
	// For pathGotEnd: the server's close code, 0 when the connection ended
	// without a close frame, and the error that ended the reading.
	code int
	err  error
	at   time.Time
}

func (e pathEvent) String() string {
	switch e.kind {
	case pathGotFrame:
		return fmt.Sprintf("frame %.200s", e.text)
	case pathGotPing:
		return fmt.Sprintf("ping %q", e.text)
	case pathGotPong:
		return fmt.Sprintf("pong %q", e.text)
	case pathGotEnd:
		if e.code != 0 {
			return fmt.Sprintf("close %d", e.code)
		}
		return fmt.Sprintf("the end of the connection without a close frame (%v)", e.err)
	}
	return "?"
}

// pathConn is the client under test. Its bytes go straight to the
// connection (gorilla's writer is not used at all), one write at a time;
// a goroutine reads the server's frames with gorilla's reader into events.
// It answers the server's pings with pongs unless silent, and the server's
// close frame with the same code, as a browser does.
type pathConn struct {
	t      *testing.T
	ws     *websocket.Conn
	silent bool
	// welcomed is when the welcome came: the server starts its idle clock
	// as it sends the welcome, after the join (which, on a front, waits
	// for the session's home). For a client that sends nothing, it is its
	// last message as far as that clock goes.
	welcomed time.Time
	id       string
	events   chan pathEvent

	wmu       sync.Mutex
	closeSent atomic.Bool
}

// pathDial connects to u and starts reading; the connection is closed
// when the test ends.
func pathDial(t *testing.T, d *websocket.Dialer, u string, silent bool) *pathConn {
	t.Helper()
	ws, _, err := d.Dial(u, nil)
	if err != nil {
		t.Fatalf("dialing %s: %v", u, err)
	}
	c := &pathConn{t: t, ws: ws, silent: silent, events: make(chan pathEvent, 4096)}
	t.Cleanup(func() { ws.Close() })
	ws.SetPingHandler(func(data string) error {
		c.events <- pathEvent{kind: pathGotPing, text: data, at: time.Now()}
		if !c.silent {
			_ = c.write(pathFrame{op: websocket.PongMessage, payload: []byte(data)}.bytes())
		}
		return nil
	})
	ws.SetPongHandler(func(data string) error {
		c.events <- pathEvent{kind: pathGotPong, text: data, at: time.Now()}
		return nil
	})
	ws.SetCloseHandler(func(code int, _ string) error {
		if c.closeSent.CompareAndSwap(false, true) {
			_ = c.write(pathCloseFrame(code))
		}
		return nil
	})
	go c.read()
	return c
}

// read runs the reader; the events channel closes after pathGotEnd.
func (c *pathConn) read() {
	defer close(c.events)
	for {
		typ, data, err := c.ws.ReadMessage()
		at := time.Now()
		if err != nil {
			e := pathEvent{kind: pathGotEnd, err: err, at: at}
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
				e.code = ce.Code
			}
			// A close code gorilla will not take from a peer still is the
			// server's close frame.
			if code, ok := strings.CutPrefix(err.Error(), "websocket: bad close code "); ok {
				e.code, _ = strconv.Atoi(code)
			}
			c.events <- e
			return
		}
		e := pathEvent{kind: pathGotFrame, text: string(data), at: at}
		if typ != websocket.TextMessage || json.Unmarshal(data, &e.f) != nil {
			e.f.Type = "(not JSON text)"
		}
		c.events <- e
	}
}

// write writes b to the connection as it is.
func (c *pathConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	conn := c.ws.NetConn()
	_ = conn.SetWriteDeadline(time.Now().Add(pathWait))
	_, err := conn.Write(b)
	return err
}

// mustWrite writes b, failing the test if it cannot.
func (c *pathConn) mustWrite(b []byte) {
	c.t.Helper()
	if err := c.write(b); err != nil {
		c.t.Fatalf("writing %d bytes: %v", len(b), err)
	}
}

// sendClose sends a close frame with code; the server's close frame is
// then not answered.
func (c *pathConn) sendClose(code int) time.Time {
	c.t.Helper()
	c.closeSent.Store(true)
	c.mustWrite(pathCloseFrame(code))
	return time.Now()
}

// next is the next event, or false when none came by deadline.
func (c *pathConn) next(deadline time.Time) (pathEvent, bool) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case e, ok := <-c.events:
		if !ok {
			return pathEvent{kind: pathGotEnd, err: errors.New("(read already)"), at: time.Now()}, true
		}
		return e, true
	case <-timer.C:
		return pathEvent{}, false
	}
}

// expect reads until a frame of type typ, skipping pings and pongs and
// failing on anything else.
func (c *pathConn) expect(typ string) seqFrame {
	c.t.Helper()
	return c.expectEvent(typ).f
}

// expectWelcome reads the welcome, and notes when it came.
func (c *pathConn) expectWelcome() seqFrame {
	c.t.Helper()
	e := c.expectEvent("welcome")
	c.welcomed = e.at
	return e.f
}

func (c *pathConn) expectEvent(typ string) pathEvent {
	c.t.Helper()
	deadline := time.Now().Add(pathWait)
	for {
		e, ok := c.next(deadline)
		switch {
		case !ok:
			c.t.Fatalf("no %s within %s", typ, pathWait)
		case e.kind == pathGotFrame && e.f.Type == typ:
			return e
		case e.kind == pathGotFrame || e.kind == pathGotEnd:
			c.t.Fatalf("got %s, want a frame of type %s", e, typ)
		}
	}
}

// expectError reads the next frame, which must be the error code (a ping
// or pong may come first).
func (c *pathConn) expectError(code string) {
	c.t.Helper()
	if f := c.expect("error"); f.Code != code {
		c.t.Fatalf("got error %s, want %s", f.Code, code)
	}
}

// expectClose reads until the end of the connection, which must come as a
// close frame with code, skipping pings and pongs and failing on any data
// frame; it returns when the close came.
func (c *pathConn) expectClose(code int) time.Time {
	c.t.Helper()
	deadline := time.Now().Add(pathWait)
	for {
		e, ok := c.next(deadline)
		switch {
		case !ok:
			c.t.Fatalf("no close %d within %s: still connected", code, pathWait)
		case e.kind == pathGotEnd && e.code == code:
			return e.at
		case e.kind == pathGotEnd || e.kind == pathGotFrame:
			c.t.Fatalf("got %s, want close %d", e, code)
		}
	}
}

// pingPong sends {"type":"ping"} and expects {"type":"pong"}: the session
// is alive. Pongs to WebSocket pings that came before it are returned.
func (c *pathConn) pingPong() []string {
	c.t.Helper()
	c.mustWrite(pathText(`{"type":"ping"}`))
	var pongs []string
	deadline := time.Now().Add(pathWait)
	for {
		e, ok := c.next(deadline)
		switch {
		case !ok:
			c.t.Fatalf("no pong to a ping within %s", pathWait)
		case e.kind == pathGotPong:
			pongs = append(pongs, e.text)
		case e.kind == pathGotFrame && e.f.Type == "pong":
			return pongs
		case e.kind == pathGotFrame || e.kind == pathGotEnd:
			c.t.Fatalf("got %s, want the pong to a ping", e)
		}
	}
}

// pathObserver is the subject's room-mate, a plain client of Caddy A that
// answers pings (gorilla's default) and records the frames it gets.
type pathObserver struct {
	t      *testing.T
	id     string
	frames chan pathEvent
}

// pathObserve joins room on p and reads from then on.
func pathObserve(t *testing.T, p *caddyproc.Proc, room string) *pathObserver {
	t.Helper()
	cl := join(t, p, room)
	_ = cl.c.SetReadDeadline(time.Time{})
	o := &pathObserver{t: t, id: cl.id, frames: make(chan pathEvent, 1024)}
	go func() {
		for {
			_, data, err := cl.c.ReadMessage()
			if err != nil {
				o.frames <- pathEvent{kind: pathGotEnd, err: err, at: time.Now()}
				return
			}
			e := pathEvent{kind: pathGotFrame, text: string(data), at: time.Now()}
			_ = json.Unmarshal(data, &e.f)
			o.frames <- e
		}
	}()
	return o
}

// await returns the first frame that match accepts, skipping others, or
// false when none came by deadline.
func (o *pathObserver) await(deadline time.Time, match func(seqFrame) bool) (pathEvent, bool) {
	o.t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case e := <-o.frames:
			if e.kind == pathGotEnd {
				o.t.Fatalf("the observer's connection ended: %v", e.err)
			}
			if match(e.f) {
				return e, true
			}
		case <-timer.C:
			return pathEvent{}, false
		}
	}
}

// peerLeft waits until deadline for the peer-left about id.
func (o *pathObserver) peerLeft(id string, deadline time.Time) (time.Time, bool) {
	e, ok := o.await(deadline, func(f seqFrame) bool { return f.Type == "peer-left" && f.ID == id })
	return e.at, ok
}

// leftSoFar tells whether the peer-left about id has come already, and
// when; it does not wait.
func (o *pathObserver) leftSoFar(id string) (time.Time, bool) {
	o.t.Helper()
	for {
		select {
		case e := <-o.frames:
			if e.kind == pathGotEnd {
				o.t.Fatalf("the observer's connection ended: %v", e.err)
			}
			if e.f.Type == "peer-left" && e.f.ID == id {
				return e.at, true
			}
		default:
			return time.Time{}, false
		}
	}
}

// joined waits for the peer-joined about id.
func (o *pathObserver) joined(id string) {
	o.t.Helper()
	if _, ok := o.await(time.Now().Add(pathWait), func(f seqFrame) bool { return f.Type == "peer-joined" && f.ID == id }); !ok {
		o.t.Fatalf("the observer got no peer-joined for %s within %s", id, pathWait)
	}
}
