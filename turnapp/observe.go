package turnapp

import (
	"encoding/binary"
	"net"
)

// observedPacketConn shows every datagram pion reads to observe first.
type observedPacketConn struct {
	net.PacketConn
	observe func([]byte)
}

// ReadFrom implements net.PacketConn.
func (c observedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err == nil {
		c.observe(p[:n])
	}
	return n, addr, err
}

// observedListener wraps accepted stream connections (TCP, TLS) so observe
// sees each whole STUN message in their byte streams.
type observedListener struct {
	net.Listener
	observe func([]byte)
}

// Accept implements net.Listener.
func (l observedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &observedConn{Conn: c, observe: l.observe}, nil
}

// observedConn reassembles the STUN and ChannelData frames of a stream as
// pion's STUNConn does (RFC 8656 framing over TCP), only to look at them;
// the bytes reach pion unchanged.
type observedConn struct {
	net.Conn
	observe func([]byte)
	buf     []byte
	broken  bool // not TURN framing: pion closes such a connection
}

// stunMagicCookie is the fixed value in every STUN header (RFC 8489 5).
const stunMagicCookie = 0x2112A442

// maxFrame bounds the reassembly buffer: STUN and ChannelData lengths are
// 16-bit.
const maxFrame = 20 + 0xffff

// Read implements net.Conn.
func (c *observedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.broken {
		c.buf = append(c.buf, p[:n]...)
		for {
			size, ok := frameSize(c.buf)
			if size < 0 || len(c.buf) > 2*maxFrame {
				c.broken, c.buf = true, nil
				break
			}
			if !ok {
				break
			}
			c.observe(c.buf[:size])
			c.buf = c.buf[size:]
		}
		if len(c.buf) == 0 {
			c.buf = nil // let a large buffer go
		}
	}
	return n, err
}

// frameSize returns the size of the frame at the start of b and whether b
// holds all of it; -1 means b is not TURN framing.
func frameSize(b []byte) (int, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var size int
	switch {
	case b[0]>>6 == 0: // STUN: the two top bits are zero
		size = 20 + int(binary.BigEndian.Uint16(b[2:4]))
		if len(b) >= 8 && binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie {
			return -1, false
		}
	case b[0]>>6 == 1: // ChannelData, channel numbers 0x4000-0x7FFF, padded to 4
		size = 4 + (int(binary.BigEndian.Uint16(b[2:4]))+3)&^3
	default:
		return -1, false
	}
	return size, len(b) >= size
}
