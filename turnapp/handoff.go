package turnapp

import (
	"net"
	"sync"
)

// handoffListener is a net.Listener that binds nothing: the site listener
// wrapper (caddy.listeners.turn) feeds it the TURN connections it finds
// among the site's own, already TLS-decrypted, and pion accepts them
// through the same observedListener as its TCP and TLS sockets, so they
// get the same frame checks, idle timeouts, permission handler, quotas and
// authentication.
type handoffListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoffListener() *handoffListener {
	return &handoffListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept implements net.Listener.
func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; it is pion's to call when the server
// closes. Connections handed over afterwards are refused.
func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener. The connections carry their own
// addresses (the site's port); this one only names the listener.
func (l *handoffListener) Addr() net.Addr { return handoffAddr{} }

// hand gives c to pion, or reports false once the listener is closed,
// leaving c to the caller.
func (l *handoffListener) hand(c net.Conn) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

// handoffAddr names the handoff listener.
type handoffAddr struct{}

func (handoffAddr) Network() string { return "tcp" }
func (handoffAddr) String() string  { return "site-listener" }
