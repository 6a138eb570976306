//go:build !linux

package turnapp

import "net"

// udpSocketsPerListener is 1 where SO_REUSEPORT does not spread datagrams
// over the sockets sharing an address by sender (it does on Linux): a
// client's datagrams must all reach the same socket, whose pion allocation
// manager holds its allocation.
func udpSocketsPerListener() int { return 1 }

func udpListenConfig() net.ListenConfig { return net.ListenConfig{} }
