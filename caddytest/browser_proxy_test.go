//go:build linux

package caddytest

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// cutProxy forwards TCP connections from a loopback port of its own to
// Caddy's HTTPS port (TLS passes through untouched), so that a test can
// cut a page's signaling socket the ways networks do. A page uses it with
// the demo's ?ws= parameter.
type cutProxy struct {
	ln net.Listener
	mu sync.Mutex
	// live are the connections not cut yet; all includes the cut ones,
	// which a silent cut leaves open until the test ends.
	live map[*proxiedConn]bool
	all  []*proxiedConn
	// blocked: new connections are reset at once, as on a network that is
	// down (see block).
	blocked atomic.Bool
}

// cutMode is how a cut looks to both ends.
type cutMode int

const (
	// cutAbrupt resets both ends at once, as a dead router that answers
	// with RSTs: both notice immediately.
	cutAbrupt cutMode = iota
	// cutSilent passes nothing on any more, not even the end of the
	// connection, as a network that drops everything: each end notices only
	// by its own pings (the server's ping_interval, the client's
	// pingIntervalMs).
	cutSilent
)

func (m cutMode) String() string {
	if m == cutSilent {
		return "silent"
	}
	return "abrupt"
}

func newCutProxy(t *testing.T) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, live: map[*proxiedConn]bool{}}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// wsURL is the signaling WebSocket at path of the test site, through the
// proxy. localhost, as the page's own host: Caddy's certificate is for it
// and the demo accepts no other host.
func (p *cutProxy) wsURL(path string) string {
	return fmt.Sprintf("wss://localhost:%d%s", p.ln.Addr().(*net.TCPAddr).Port, path)
}

func (p *cutProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.blocked.Load() {
			resetConn(c.(*net.TCPConn))
			continue
		}
		go p.forward(c.(*net.TCPConn))
	}
}

// block makes the network down for new connections (reset at once) or up
// again; connections open meanwhile are cut by cut.
func (p *cutProxy) block(down bool) {
	p.blocked.Store(down)
}

func (p *cutProxy) forward(client *net.TCPConn) {
	s, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(httpsPort)))
	if err != nil {
		client.Close()
		return
	}
	c := &proxiedConn{client: client, server: s.(*net.TCPConn)}
	p.mu.Lock()
	p.live[c] = true
	p.all = append(p.all, c)
	p.mu.Unlock()
	go c.pump(c.server, c.client, func() { p.forget(c) })
	go c.pump(c.client, c.server, func() { p.forget(c) })
}

func (p *cutProxy) forget(c *proxiedConn) {
	p.mu.Lock()
	delete(p.live, c)
	p.mu.Unlock()
}

// cut cuts every live connection and reports how many there were.
func (p *cutProxy) cut(mode cutMode) int {
	p.mu.Lock()
	conns := p.live
	p.live = map[*proxiedConn]bool{}
	p.mu.Unlock()
	for c := range conns {
		if mode == cutSilent {
			c.silent.Store(true)
		} else {
			c.reset()
		}
	}
	return len(conns)
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.all {
		c.reset()
	}
}

// proxiedConn is one forwarded connection.
type proxiedConn struct {
	client, server *net.TCPConn
	silent         atomic.Bool
}

// pump copies src to dst until either fails; then it closes both, unless
// the connection was cut silently: then it passes on nothing, and closes
// only src, whose end has come, for the other end to find out by itself.
func (c *proxiedConn) pump(dst, src *net.TCPConn, done func()) {
	defer done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !c.silent.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if c.silent.Load() {
		src.Close()
		return
	}
	c.client.Close()
	c.server.Close()
}

// reset closes both ends with a TCP reset rather than an orderly FIN.
func (c *proxiedConn) reset() {
	resetConn(c.client)
	resetConn(c.server)
}

func resetConn(conn *net.TCPConn) {
	_ = conn.SetLinger(0) // fails only on a connection closed already
	conn.Close()
}
