//go:build !linux

package ws

// readByLoop reports false: outside Linux every connection is read by a
// goroutine of its own.
func readByLoop(*wsConn, func(readEnd)) bool { return false }
