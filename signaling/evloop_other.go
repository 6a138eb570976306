//go:build !linux

package signaling

// readByLoop reports false: outside Linux every connection is read by a
// goroutine of its own.
func readByLoop(*wsConn, func(readEnd)) bool { return false }

// readEnd is how the reading of a connection ended (see evloop_linux.go).
type readEnd struct {
	goodbye bool
	code    int
	reason  string
}

// endRead does nothing: no loop reads the connection.
func (c *wsConn) endRead() {}
