//go:build linux

package turnapp

import (
	"net"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxUDPSockets caps udpSocketsPerListener on machines with many cores,
// each socket being a pion read loop and allocation manager.
const maxUDPSockets = 16

// udpSocketsPerListener is how many sockets a UDP listener binds on its
// address, each read by its own pion goroutine. Linux spreads the
// datagrams sent to an address over the sockets bound to it with
// SO_REUSEPORT by a hash of the sender's address and port, so a client
// always reaches the same socket, and so the same pion allocation
// manager. One socket per processor Go runs on.
func udpSocketsPerListener() int { return min(runtime.GOMAXPROCS(0), maxUDPSockets) }

// udpListenConfig sets SO_REUSEPORT on every UDP listener socket. Caddy's
// listener pool sets it too on unix, but only logs a failure; a second
// socket without it would fail to bind, so the first must have it.
func udpListenConfig() (lc net.ListenConfig) {
	lc.Control = func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}
	return lc
}
