package evloop

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// On Linux, plain TCP connections (not TLS) are read and written with
// syscall.RawSyscall on their non-blocking sockets, and a sender writes a
// relayed frame itself when the socket takes it at once (see ws.Conn.Send).
// A syscall.Syscall tells the scheduler it may block, and the first one
// after the process was idle wakes the runtime's monitor thread, which then
// polls every 20 µs until the process is idle again: at a few frames per
// second per peer the process is idle between most frames, and those
// wake-ups cost more CPU than the reads and writes themselves.

// rawConn is a plain TCP connection read and written that way. Waiting
// for data or room, deadlines included, is still the runtime poller's.
type rawConn struct {
	*net.TCPConn
	raw syscall.RawConn
	// wmu is held for every write, so that no write lands inside
	// another's frame, and from a partial tryWrite until finishWrite has
	// written the rest: gorilla's own control frames (pongs, the close
	// echo) wait for it.
	wmu sync.Mutex
}

// WithRawIO wraps a plain TCP connection; anything else (TLS) is returned
// as it is.
func WithRawIO(conn net.Conn) net.Conn {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return conn
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return conn
	}
	return &rawConn{TCPConn: tc, raw: raw}
}

// Read implements net.Conn.
func (c *rawConn) Read(p []byte) (n int, err error) {
	if len(p) == 0 {
		return 0, nil
	}
	rerr := c.raw.Read(func(fd uintptr) bool {
		n, err = rawSyscallRW(syscall.SYS_READ, fd, p)
		return err != syscall.EAGAIN // wait for data, then call again
	})
	switch {
	case rerr != nil:
		return 0, rerr
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write implements net.Conn: a blocking write, bounded by the write
// deadline.
func (c *rawConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.TCPConn.Write(b)
}

// TryWrite writes what the socket takes of b at once; held says it wrote
// only part of it and kept the connection's write lock, so that nothing
// else is written before FinishWrite writes the rest.
func (c *rawConn) TryWrite(b []byte) (n int, held bool, err error) {
	if !c.wmu.TryLock() {
		return 0, false, nil // a blocking write is under way
	}
	n, err = c.writeNow(b)
	if err != nil || n == len(b) {
		c.wmu.Unlock()
		return n, false, err
	}
	return n, true, nil
}

// writeNow writes what the socket takes of b at once. Writes here have no
// deadline; one left by a blocking write (gorilla sets its own) and
// expired since is cleared rather than failing them.
func (c *rawConn) writeNow(b []byte) (n int, err error) {
	write := func(fd uintptr) bool {
		n, err = rawSyscallRW(syscall.SYS_WRITE, fd, b)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			n, err = 0, nil // the socket is full: the rest is the writer goroutine's
		}
		return true
	}
	werr := c.raw.Write(write)
	if errors.Is(werr, os.ErrDeadlineExceeded) {
		if werr = c.TCPConn.SetWriteDeadline(time.Time{}); werr == nil {
			werr = c.raw.Write(write)
		}
	}
	if werr != nil {
		return 0, werr
	}
	return n, err
}

// FinishWrite writes the rest of a held TryWrite, blocking until
// deadline, and releases the write lock.
func (c *rawConn) FinishWrite(rest []byte, deadline time.Time) error {
	defer c.wmu.Unlock()
	if err := c.TCPConn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err := c.TCPConn.Write(rest)
	return err
}

// rawSyscallRW is read(2) or write(2) of p on fd.
func rawSyscallRW(trap, fd uintptr, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
