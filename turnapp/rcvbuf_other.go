//go:build !linux

package turnapp

import (
	"errors"
	"net"
)

// setReceiveBuffer asks for n bytes of receive buffer on pc's socket
// (SO_RCVBUF); the system may grant less without saying, so it returns n.
func setReceiveBuffer(pc net.PacketConn, n int) (int, error) {
	for {
		switch c := pc.(type) {
		case *net.UDPConn:
			return n, c.SetReadBuffer(n)
		case interface{ Unwrap() net.PacketConn }:
			pc = c.Unwrap()
		default:
			return 0, errors.New("not a UDP socket")
		}
	}
}
