//go:build linux

package turnapp

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// setReceiveBuffer asks for n bytes of receive buffer on pc's socket with
// SO_RCVBUFFORCE, which may exceed net.core.rmem_max for a process with
// CAP_NET_ADMIN (root), else with SO_RCVBUF, which the kernel caps at
// rmem_max. It returns the bytes the kernel granted.
func setReceiveBuffer(pc net.PacketConn, n int) (int, error) {
	raw, err := rawConn(pc)
	if err != nil {
		return 0, err
	}
	var granted int
	var setErr, getErr error
	ctlErr := raw.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
			setErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
		var v int
		if v, getErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); getErr == nil {
			granted = v / 2 // Linux reports twice what was set: its bookkeeping overhead
		}
	})
	if ctlErr != nil {
		return 0, ctlErr
	}
	return granted, errors.Join(setErr, getErr)
}

// rawConn reaches the socket under a packet conn that Caddy's listener
// pool wraps (Unwrap).
func rawConn(pc net.PacketConn) (syscall.RawConn, error) {
	for {
		switch c := pc.(type) {
		case syscall.Conn:
			return c.SyscallConn()
		case interface{ Unwrap() net.PacketConn }:
			pc = c.Unwrap()
		default:
			return nil, fmt.Errorf("turn: %T has no socket", pc)
		}
	}
}
