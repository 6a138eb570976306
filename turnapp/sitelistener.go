package turnapp

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyfileopt"
	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// DefaultSiteIdleTimeout is how long a connection to the site may stay
// silent after its TLS handshake (and how long the handshake may take)
// before the wrapper has seen what it speaks, like the TURN listeners'
// idle timeout.
const DefaultSiteIdleTimeout = 30 * time.Second

// SiteListener is the listener wrapper caddy.listeners.turn: TURNS on the
// site's own port and hostname. Placed after Caddy's TLS in a server's
// listener_wrappers, it sees each connection after Caddy's own handshake
// (Caddy's certificates, renewals included) and looks at its first bytes:
// a STUN message goes to the embedded TURN server (the turn app), whose
// checks all apply to it as to its own listeners; anything else goes on to
// the HTTP server unchanged. Connections that negotiated an application
// protocol (ALPN: h2, http/1.1) are HTTP and are not looked at: browsers'
// TURN/TLS clients send no ALPN. While it runs, credentials and the
// signaling welcome list turns:<host>:<port>?transport=tcp for the port.
type SiteListener struct {
	// Hostname names the server in the turns: URI. Default: the host the
	// client reached the site at.
	Hostname string `json:"hostname,omitempty"`
	// IdleTimeout bounds the TLS handshake and the wait for the first
	// bytes after it. Default 30s.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	app    *App
	logger *zap.Logger
}

var (
	_ caddy.Module          = (*SiteListener)(nil)
	_ caddy.Provisioner     = (*SiteListener)(nil)
	_ caddy.Validator       = (*SiteListener)(nil)
	_ caddy.ListenerWrapper = (*SiteListener)(nil)
	_ caddyfile.Unmarshaler = (*SiteListener)(nil)
)

// CaddyModule returns the Caddy module information.
func (*SiteListener) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.listeners.turn",
		New: func() caddy.Module { return new(SiteListener) },
	}
}

// Provision finds the turn app; it binds nothing.
func (w *SiteListener) Provision(ctx caddy.Context) error {
	w.logger = ctx.Logger()
	// AppIfConfigured: the wrapper serves the configured TURN server and
	// must not conjure an empty one. The app may still be provisioning
	// (it looks at the HTTP app for its realm): it is only used once the
	// listeners start.
	app, err := ctx.AppIfConfigured(turncreds.SourceAppName)
	if errors.Is(err, caddy.ErrNotConfigured) {
		return errors.New("the turn listener wrapper needs the embedded TURN server: configure the turn global option (apps.turn)")
	}
	if err != nil {
		return err
	}
	a, ok := app.(*App)
	if !ok {
		return fmt.Errorf("app %q is %T, not the embedded TURN server", turncreds.SourceAppName, app)
	}
	w.app = a
	if w.IdleTimeout == 0 {
		w.IdleTimeout = caddy.Duration(DefaultSiteIdleTimeout)
	}
	return nil
}

// Validate checks the config.
func (w *SiteListener) Validate() error {
	if w.IdleTimeout < 0 {
		return fmt.Errorf("turn listener wrapper: idle_timeout must not be negative, got %s", time.Duration(w.IdleTimeout))
	}
	return nil
}

// WrapListener implements caddy.ListenerWrapper. A listener without TLS
// (the wrapper placed before tls, or a server without TLS) is returned as
// it is: TURNS is TURN after Caddy's own handshake.
func (w *SiteListener) WrapListener(ln net.Listener) net.Listener {
	if !isTLSListener(ln) {
		w.logger.Warn("turn listener wrapper on a listener without TLS: not serving TURN there (put it after tls in listener_wrappers, on an HTTPS server)",
			zap.String("address", ln.Addr().String()))
		return ln
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		w.app.sites.add(w.Hostname, tcp.Port)
	}
	w.logger.Info("serving TURNS beside the site", zap.String("address", ln.Addr().String()), zap.String("hostname", w.Hostname))
	return newSortingListener(ln, time.Duration(w.IdleTimeout), w.app.sites.hand, w.logger)
}

// isTLSListener reports whether ln is crypto/tls's listener, the one
// Caddy's HTTP app puts in place of the tls placeholder wrapper. The type
// is unexported; its name is the only way to tell.
func isTLSListener(ln net.Listener) bool {
	return fmt.Sprintf("%T", ln) == "*tls.listener"
}

// UnmarshalCaddyfile sets up the wrapper from its line in a server's
// listener_wrappers:
//
//	listener_wrappers {
//	    turn [<hostname>] {
//	        hostname     <hostname>   # the turns: URI's host; default: the host the page was loaded from
//	        idle_timeout <duration>   # handshake and first bytes; default 30s
//	    }
//	}
//
// It comes after Caddy's TLS, which is where wrappers go by default (list
// tls before it when other wrappers must see the encrypted bytes).
func (w *SiteListener) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // wrapper name
	args, err := caddyfileopt.Args(d, 0, 1)
	if err != nil {
		return err
	}
	if len(args) == 1 {
		w.Hostname = args[0]
	}
	for d.NextBlock(0) {
		opt := d.Val()
		var err error
		switch opt {
		case "hostname":
			w.Hostname, err = caddyfileopt.String(d)
		case "idle_timeout":
			w.IdleTimeout, err = caddyfileopt.Duration(d)
		default:
			err = d.Errf("unknown turn listener wrapper option %q", opt)
		}
		if err == nil {
			err = caddyfileopt.NoBlock(d, opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// siteListeners are the site ports where a config's wrappers serve TURNS,
// and the running server they hand connections to.
type siteListeners struct {
	srv   atomic.Pointer[server] // nil while the turn app is not running
	mu    sync.Mutex
	ports []sitePort
}

// sitePort is one port serving TURNS beside the site.
type sitePort struct {
	hostname string // "": the host the client reached the site at
	port     int
}

func (s *siteListeners) add(hostname string, port int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := sitePort{hostname: hostname, port: port}
	if !slices.Contains(s.ports, p) { // one port may be several sockets (IPv4, IPv6)
		s.ports = append(s.ports, p)
	}
}

func (s *siteListeners) list() []sitePort {
	if s == nil { // an App that was never provisioned
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ports)
}

// hand gives c to the running TURN server, or reports false when none runs
// (the config is being replaced) or it is closing.
func (s *siteListeners) hand(c net.Conn) bool {
	srv := s.srv.Load()
	return srv != nil && srv.site.hand(c)
}

// sortingListener accepts the site's TLS connections in a goroutine of its
// own, and sorts each in a goroutine of its own, so a slow or silent
// client delays no other: TURN to turn, the rest to Accept.
type sortingListener struct {
	net.Listener
	timeout time.Duration
	turn    func(net.Conn) bool
	logger  *zap.Logger

	accepted  chan accepted
	ctx       context.Context // done once the listener is closed
	cancel    context.CancelFunc
	sorting   connSet // connections not sorted yet, closed with the listener
	startOnce sync.Once
}

// accepted is what Accept returns next.
type accepted struct {
	conn net.Conn
	err  error
}

func newSortingListener(ln net.Listener, timeout time.Duration, turn func(net.Conn) bool, logger *zap.Logger) *sortingListener {
	ctx, cancel := context.WithCancel(context.Background())
	return &sortingListener{Listener: ln, timeout: timeout, turn: turn, logger: logger,
		accepted: make(chan accepted), ctx: ctx, cancel: cancel}
}

// Accept implements net.Listener: the next connection that is not TURN.
func (l *sortingListener) Accept() (net.Conn, error) {
	l.startOnce.Do(func() { go l.acceptLoop() })
	select {
	case a := <-l.accepted:
		return a.conn, a.err
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; connections still being sorted are
// closed too.
func (l *sortingListener) Close() error {
	l.cancel()
	l.sorting.closeAll()
	return l.Listener.Close()
}

func (l *sortingListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			// The HTTP server decides what an error means (it retries
			// temporary ones); its next Accept call comes back here.
			if !l.pass(accepted{err: err}) || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go l.sort(c)
	}
}

// pass hands a to Accept, or reports false once the listener is closed.
func (l *sortingListener) pass(a accepted) bool {
	select {
	case l.accepted <- a:
		return true
	case <-l.ctx.Done():
		if a.conn != nil {
			_ = a.conn.Close()
		}
		return false
	}
}

// sort completes c's TLS handshake and sends it where its first bytes say.
func (l *sortingListener) sort(c net.Conn) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		l.pass(accepted{conn: c})
		return
	}
	l.sorting.add(tc)
	defer l.sorting.remove(tc)
	if l.ctx.Err() != nil { // closed before the add: closeAll missed it
		_ = tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Now().Add(l.timeout))
	// A failed handshake goes to the HTTP server too, which asks for it
	// again, gets the same error and does what it always does (log it,
	// answer plain HTTP with 400). A negotiated protocol means HTTP.
	if err := tc.HandshakeContext(l.ctx); err != nil || tc.ConnectionState().NegotiatedProtocol != "" {
		_ = tc.SetDeadline(time.Time{})
		l.pass(accepted{conn: tc})
		return
	}
	head, isTURN, err := sniff(tc)
	if err != nil {
		// Silent past the timeout, or gone: neither is anyone's to serve.
		l.logger.Debug("closing a site connection that sent nothing to tell TURN from HTTP",
			zap.String("client", tc.RemoteAddr().String()), zap.Int("bytes", len(head)), zap.Error(err))
		_ = tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	pc := &prefixConn{Conn: tc, prefix: head}
	if !isTURN {
		l.pass(accepted{conn: pc})
		return
	}
	l.logger.Debug("TURN connection on the site's port", zap.String("client", tc.RemoteAddr().String()))
	if !l.turn(pc) {
		_ = tc.Close()
	}
}

// sniffLen is how many bytes tell STUN from anything else: a STUN header
// carries its magic cookie at bytes 4 to 8.
const sniffLen = 8

// sniff reads the first bytes of c until classify can tell what they are.
func sniff(c net.Conn) (head []byte, isTURN bool, err error) {
	buf := make([]byte, sniffLen)
	n := 0
	for {
		var m int
		m, err = c.Read(buf[n:])
		n += m
		if turn, decided := classify(buf[:n]); decided {
			return buf[:n], turn, nil
		}
		if err != nil {
			return buf[:n], false, err
		}
	}
}

// classify tells a TURN stream from HTTP by its first bytes, once it has
// enough of them (decided). A TURN client's first message on a connection
// is a STUN request (Allocate, or Binding): a STUN header has its two top
// bits zero and the magic cookie at bytes 4 to 8 (RFC 8489 6). ChannelData
// (first byte 0x40-0x7F) cannot come first, since its channel is bound to
// an allocation made on the same connection, and it could not be told
// apart anyway: HTTP/1.x methods (GET, POST) and the HTTP/2 preface (PRI)
// start with bytes in that range. So anything but STUN is HTTP.
func classify(b []byte) (isTURN, decided bool) {
	switch {
	case len(b) == 0:
		return false, false
	case b[0]>>6 != 0:
		return false, true
	case len(b) < sniffLen:
		return false, false
	}
	return binary.BigEndian.Uint32(b[4:sniffLen]) == stunMagicCookie, true
}

// prefixConn is a TLS connection whose first bytes were read already: it
// reads them again first. Embedding *tls.Conn keeps ConnectionState, which
// Caddy's HTTP server uses for the TLS details of requests on wrapped
// connections.
type prefixConn struct {
	*tls.Conn
	prefix []byte
}

// Read implements net.Conn.
func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
