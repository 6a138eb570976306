package turnapp

import (
	"encoding/binary"
	"net"
	"sync"
	"time"
)

// observer looks at a STUN or ChannelData frame from src before pion does;
// a non-nil result is the answer to send instead of passing the frame on.
type observer func(frame []byte, src net.Addr) (reject []byte)

// Read timeouts of stream (TCP, TLS) connections, variables so tests can
// shorten them. pion never times out a stream, so without them a client
// that connects and sends nothing, or stops halfway through a frame, holds
// its connection, buffer and goroutine for good.
var (
	// streamIdleTimeout is how long a connection without an allocation may
	// go without a whole frame (this covers the TLS handshake and a client
	// that sends nothing), and how long any frame may take from its first
	// byte to its last, so trickling bytes does not keep it open. Clients
	// send a request as one write and allocate right after connecting.
	streamIdleTimeout = 30 * time.Second
	// allocatedIdleTimeout is how long a connection that holds an
	// allocation may be silent: longer than the longest allocation
	// lifetime pion grants (one hour), so even a client that only
	// refreshes just before expiry is never cut; once it misses a refresh
	// its allocation is gone anyway. In a call, media and consent checks
	// flow every few seconds.
	allocatedIdleTimeout = time.Hour + time.Minute
)

// streamTimeouts are the read timeouts of one listener's connections,
// copied from the variables when the listener starts: the connections'
// goroutines then never read variables that a test sets back.
type streamTimeouts struct {
	idle, allocated time.Duration
}

func currentStreamTimeouts() streamTimeouts {
	return streamTimeouts{idle: streamIdleTimeout, allocated: allocatedIdleTimeout}
}

// observedPacketConn shows every datagram pion reads to observe first.
type observedPacketConn struct {
	net.PacketConn
	observe observer
}

// ReadFrom implements net.PacketConn.
func (c observedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		reject := c.observe(p[:n], addr)
		if reject == nil {
			return n, addr, nil
		}
		_, _ = c.PacketConn.WriteTo(reject, addr)
	}
}

// observedListener wraps accepted stream connections (TCP, TLS) so observe
// sees each whole STUN message in their byte streams, records them in live
// so that stopping the server closes them (pion leaves accepted
// connections open when its listener closes), and times out idle ones.
type observedListener struct {
	net.Listener
	observe   observer
	live      *connSet
	allocated func(addrKey string) bool // whether the client holds an allocation
	timeouts  streamTimeouts
}

// Accept implements net.Listener.
func (l observedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	oc := &observedConn{Conn: c, observe: l.observe, live: l.live, allocated: l.allocated, timeouts: l.timeouts, key: addrKey(c.RemoteAddr())}
	l.live.add(oc)
	return oc, nil
}

// connSet is the set of open stream connections of a server.
type connSet struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (s *connSet) add(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = make(map[net.Conn]struct{})
	}
	s.conns[c] = struct{}{}
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// closeAll closes every connection still open.
func (s *connSet) closeAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// observedConn reassembles the STUN and ChannelData frames of a stream as
// pion's STUNConn does (RFC 8656 framing over TCP) and passes pion the
// frames that observe lets through, unchanged. Its buffers are reused, so
// relaying media over TCP does not allocate per read. A read that times
// out (see streamIdleTimeout) ends pion's read loop, which closes the
// connection and deletes its allocation.
type observedConn struct {
	net.Conn
	observe      observer
	live         *connSet
	allocated    func(addrKey string) bool // nil: never allocated
	timeouts     streamTimeouts
	key          string    // addrKey of the client
	in           []byte    // received, not yet a whole frame
	partialSince time.Time // when the frame in in began
	out          []byte    // frames waiting for pion, from outPos on
	outPos       int
	raw          bool // not TURN framing: pass bytes through, pion closes it
}

// Close implements net.Conn.
func (c *observedConn) Close() error {
	c.live.remove(c)
	return c.Conn.Close()
}

// Read implements net.Conn.
func (c *observedConn) Read(p []byte) (int, error) {
	for c.outPos == len(c.out) {
		c.out, c.outPos = c.out[:0], 0
		if err := c.Conn.SetReadDeadline(c.deadline(time.Now())); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(p)
		if n > 0 {
			c.split(p[:n], time.Now())
		}
		if err != nil && len(c.out) == 0 {
			return 0, err
		}
	}
	n := copy(p, c.out[c.outPos:])
	c.outPos += n
	return n, nil
}

// deadline is when the next read must have returned: a partial frame must
// be complete streamIdleTimeout after its first byte; otherwise the
// connection may idle for streamIdleTimeout, or allocatedIdleTimeout
// while its client holds an allocation.
func (c *observedConn) deadline(now time.Time) time.Time {
	switch {
	case len(c.in) > 0:
		return c.partialSince.Add(c.timeouts.idle)
	case c.allocated != nil && c.allocated(c.key):
		return now.Add(c.timeouts.allocated)
	}
	return now.Add(c.timeouts.idle)
}

// split moves whole frames from the input to the output, answering the
// ones observe rejects. now is when b arrived.
func (c *observedConn) split(b []byte, now time.Time) {
	if c.raw {
		c.out = append(c.out, b...)
		return
	}
	continued := len(c.in) > 0 // b continues a partial frame
	c.in = append(c.in, b...)
	off := 0
	for {
		size, complete := frameSize(c.in[off:])
		if size < 0 {
			c.raw = true
			c.out = append(c.out, c.in[off:]...)
			off = len(c.in)
			break
		}
		if !complete {
			break
		}
		frame := c.in[off : off+size]
		if reject := c.observe(frame, c.Conn.RemoteAddr()); reject != nil {
			_, _ = c.Conn.Write(reject)
		} else {
			c.out = append(c.out, frame...)
		}
		off += size
	}
	if off > 0 || !continued {
		c.partialSince = now // what is left, if anything, is a new frame
	}
	c.in = c.in[:copy(c.in, c.in[off:])]
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

// stunMagicCookie is the fixed value in every STUN header (RFC 8489 5).
const stunMagicCookie = 0x2112A442
