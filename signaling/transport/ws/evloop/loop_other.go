//go:build !linux

package evloop

import "net"

// Read reports false: outside Linux every connection is read by a
// goroutine of its own.
func Read(net.Conn, Reader) bool { return false }

// Restrict does nothing: there is no loop.
func Restrict(int) (restore func()) { return func() {} }

// Reading is 0: there is no loop.
func Reading(func(Reader) bool) int { return 0 }

// Reader is the read side of a connection a loop reads (see loop_linux.go).
type Reader interface {
	Take(b []byte) (done bool)
	Cut() bool
	Stopped(failed bool)
}
