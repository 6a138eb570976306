package turnapp

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

func TestFrameSize(t *testing.T) {
	stunHdr := func(length int) []byte {
		return []byte{0x00, 0x01, byte(length >> 8), byte(length), 0x21, 0x12, 0xA4, 0x42}
	}
	tests := []struct {
		name     string
		b        []byte
		size     int
		complete bool
	}{
		{"too short", []byte{0, 1}, 0, false},
		{"stun header only", stunHdr(8), 28, false},
		{"stun complete", append(stunHdr(0), make([]byte, 12)...), 20, true},
		{"bad cookie", []byte{0, 1, 0, 0, 1, 2, 3, 4}, -1, false},
		{"channel data padded", []byte{0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0}, 12, true},
		{"channel data partial", []byte{0x40, 0x00, 0x00, 0x05, 1}, 12, false},
		{"garbage", []byte{0xC0, 0, 0, 0}, -1, false},
	}
	for _, tc := range tests {
		size, complete := frameSize(tc.b)
		if size != tc.size || complete != tc.complete {
			t.Errorf("%s: frameSize = %d, %v; want %d, %v", tc.name, size, complete, tc.size, tc.complete)
		}
	}
}

// pipeConn is a net.Conn whose reads come from a byte slice in chunks of
// the given sizes.
type pipeConn struct {
	net.Conn
	data   []byte
	chunks []int
	wrote  bytes.Buffer
}

func (c *pipeConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.chunks) > 0 {
		n = min(n, max(1, c.chunks[0]))
		c.chunks = c.chunks[1:]
	}
	n = copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func (c *pipeConn) Write(p []byte) (int, error) { return c.wrote.Write(p) }

// SetReadDeadline accepts the idle timeouts; pipeConn never blocks.
func (c *pipeConn) SetReadDeadline(time.Time) error { return nil }

// pipeClient is the client address of every pipeConn: one value, as a
// real connection's RemoteAddr is.
var pipeClient = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}

// RemoteAddr is the client address observe is told.
func (c *pipeConn) RemoteAddr() net.Addr { return pipeClient }

// FuzzObservedConn: whatever the stream and however it is split, the bytes
// pion reads are the input minus exactly the rejected frames, in order.
func FuzzObservedConn(f *testing.F) {
	stunMsg := func(length int) []byte {
		b := []byte{0x00, 0x01, byte(length >> 8), byte(length), 0x21, 0x12, 0xA4, 0x42}
		return append(b, make([]byte, 12+length)...)
	}
	f.Add(append(stunMsg(4), stunMsg(0)...), []byte{3, 7, 1})
	f.Add(append([]byte{0x40, 0x01, 0x00, 0x03, 1, 2, 3, 0}, stunMsg(8)...), []byte{5})
	f.Add([]byte{0xff, 0, 0, 0, 1, 2, 3}, []byte{2})
	f.Fuzz(func(t *testing.T, data, split []byte) {
		chunks := make([]int, len(split))
		for i, b := range split {
			chunks[i] = int(b)
		}
		// Reject every STUN message whose 4th header byte is odd: some
		// frames pass, some do not.
		var want bytes.Buffer
		rest, raw := data, false
		for len(rest) > 0 && !raw {
			size, complete := frameSize(rest)
			switch {
			case size < 0:
				raw = true
			case !complete:
				rest = nil // an incomplete tail never reaches pion
			default:
				if !(rest[0]>>6 == 0 && rest[3]%2 == 1) {
					want.Write(rest[:size])
				}
				rest = rest[size:]
			}
		}
		if raw {
			want.Write(rest)
		}
		pc := &pipeConn{data: append([]byte(nil), data...), chunks: chunks}
		oc := &observedConn{Conn: pc, live: &connSet{}, observe: func(fr []byte, _ net.Addr) []byte {
			if fr[0]>>6 == 0 && fr[3]%2 == 1 {
				return []byte("401")
			}
			return nil
		}}
		got, err := io.ReadAll(oc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("pion would read %x, want %x", got, want.Bytes())
		}
	})
}

// BenchmarkObservedConnChannelData measures the re-framing cost on a TCP
// stream of relayed media: 1200-byte ChannelData frames, 64 KiB reads.
func BenchmarkObservedConnChannelData(b *testing.B) {
	frame := append([]byte{0x40, 0x01, 0x04, 0xb0}, make([]byte, 1200)...)
	stream := bytes.Repeat(frame, 1000)
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		oc := &observedConn{Conn: &pipeConn{data: stream, chunks: []int{len(buf)}}, live: &connSet{}, observe: func([]byte, net.Addr) []byte { return nil }}
		for {
			if _, err := oc.Read(buf); err != nil {
				break
			}
		}
	}
}
