package ws

import (
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// frameReader parses a client's WebSocket frames (RFC 6455 5) from bytes
// as they arrive, in pieces of any size, for connections read by an event
// loop rather than by a goroutine of their own (package evloop). It
// holds only the state between two pieces: an idle peer's is a few dozen
// bytes and no buffer. It judges frames as gorilla/websocket's reader
// does, with the same protocol errors.
type frameReader struct {
	maxSize int64 // a message longer than this is cut at maxSize+1 bytes

	hdr  [maxClientHeader]byte // a header split across pieces
	nhdr int

	// The frame being read.
	op   byte
	fin  bool
	left uint64 // payload bytes still to come
	mask [4]byte
	mpos int // payload bytes unmasked so far, mod 4

	// The data message being read: its first frame's opcode (0 when none
	// is under way), and its payload so far when it spans pieces or
	// frames; done once it went to the handler (what is left of a message
	// cut at maxSize+1 bytes is dropped).
	msgOp byte
	msg   []byte
	done  bool
	ctl   []byte // a control frame's payload so far
}

// maxClientHeader is the longest header of a client's frame: 2 bytes, an
// 8-byte length and the 4-byte mask.
const maxClientHeader = 14

// frameHandler is what a frameReader hands complete frames to. data and
// payload are valid during the call only.
type frameHandler interface {
	message(text bool, data []byte)
	control(op byte, payload []byte)
}

// protocolError is a frame the peer should not have sent; the server
// closes with 1002 and this reason, as gorilla/websocket does.
type protocolError string

func (e protocolError) Error() string { return "websocket: " + string(e) }

// feed parses b, handing every complete message and control frame to h,
// and keeps what is left of an incomplete one. It unmasks b in place.
func (r *frameReader) feed(b []byte, h frameHandler) error {
	for len(b) > 0 {
		if r.left == 0 { // frames with nothing left are ended at once
			n, err := r.header(b)
			if err != nil || n == 0 {
				return err // n == 0: the header is not complete yet
			}
			b = b[n:]
			if r.left == 0 { // an empty payload is complete at once
				r.endFrame(h)
				continue
			}
		}
		n := min(uint64(len(b)), r.left)
		r.payload(b[:n], h)
		b = b[n:]
	}
	return nil
}

// header parses a frame header from b, or keeps b when it holds only part
// of one; it returns the bytes it consumed from b once the header is
// whole, or 0.
func (r *frameReader) header(b []byte) (int, error) {
	var h []byte
	from := r.nhdr
	if r.nhdr == 0 && len(b) >= maxClientHeader {
		h = b // the common case: no copy
	} else {
		r.nhdr += copy(r.hdr[r.nhdr:], b)
		h = r.hdr[:r.nhdr]
	}
	if len(h) < 2 {
		return 0, nil
	}
	size := 2 + 4
	switch h[1] & 0x7f {
	case 126:
		size += 2
	case 127:
		size += 8
	}
	if len(h) < size {
		return 0, nil
	}
	if err := r.start(h[:size]); err != nil {
		return 0, err
	}
	r.nhdr = 0
	return size - from, nil
}

// start takes a whole header: it judges it and sets the frame up.
func (r *frameReader) start(h []byte) error {
	op, fin := h[0]&0xf, h[0]&0x80 != 0
	var problems []string
	for i, bit := range [...]byte{0x40, 0x20, 0x10} { // no extension is negotiated
		if h[0]&bit != 0 {
			problems = append(problems, "RSV"+strconv.Itoa(i+1)+" set")
		}
	}
	length := uint64(h[1] & 0x7f)
	switch op {
	case websocket.CloseMessage, websocket.PingMessage, websocket.PongMessage:
		if length > 125 {
			problems = append(problems, "len > 125 for control")
		}
		if !fin {
			problems = append(problems, "FIN not set on control")
		}
	case websocket.TextMessage, websocket.BinaryMessage:
		if r.msgOp != 0 {
			problems = append(problems, "data before FIN")
		}
	case 0:
		if r.msgOp == 0 {
			problems = append(problems, "continuation after FIN")
		}
	default:
		problems = append(problems, "bad opcode "+strconv.Itoa(int(op)))
	}
	if h[1]&0x80 == 0 {
		problems = append(problems, "bad MASK")
	}
	if len(problems) > 0 {
		return protocolError(strings.Join(problems, ", "))
	}
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		length = binary.BigEndian.Uint64(h[2:])
		if length > 1<<63-1 {
			return protocolError("invalid frame length")
		}
	}
	r.op, r.fin, r.left, r.mpos = op, fin, length, 0
	copy(r.mask[:], h[len(h)-4:])
	if op == websocket.TextMessage || op == websocket.BinaryMessage {
		r.msgOp, r.done = op, false
	}
	return nil
}

// payload takes the next bytes p of the frame's payload.
func (r *frameReader) payload(p []byte, h frameHandler) {
	r.left -= uint64(len(p))
	switch {
	case r.op >= websocket.CloseMessage:
		r.ctl = append(r.ctl, r.unmask(p)...)
	case !r.done:
		r.data(p, h)
	}
	if r.left == 0 {
		r.endFrame(h)
	}
}

// data takes the next bytes p of a data message. The message goes to h
// as soon as it is whole, or once it is maxSize+1 bytes long, which is
// all the session needs to refuse it; the rest of it is then dropped.
func (r *frameReader) data(p []byte, h frameHandler) {
	if room := r.maxSize + 1 - int64(len(r.msg)); int64(len(p)) >= room {
		p = p[:room]
	} else if r.left > 0 || !r.fin {
		r.msg = append(r.msg, r.unmask(p)...)
		return
	}
	p = r.unmask(p)
	if len(r.msg) > 0 {
		r.msg = append(r.msg, p...)
		p = r.msg
	}
	h.message(r.msgOp == websocket.TextMessage, p)
	r.done = true
}

// unmask unmasks p in place, eight bytes at a time.
func (r *frameReader) unmask(p []byte) []byte {
	pos, i := r.mpos, 0
	if len(p) >= 16 {
		var k [8]byte
		for j := range k {
			k[j] = r.mask[(pos+j)&3]
		}
		key := binary.LittleEndian.Uint64(k[:])
		for ; i+8 <= len(p); i += 8 {
			binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^key)
		}
	}
	for ; i < len(p); i++ {
		p[i] ^= r.mask[(pos+i)&3]
	}
	r.mpos = (pos + len(p)) & 3
	return p
}

// endFrame finishes a frame: a control frame goes to h; a data message's
// last frame ends the message, which goes to h unless it went already.
func (r *frameReader) endFrame(h frameHandler) {
	op := r.op
	r.op = 0
	switch {
	case op >= websocket.CloseMessage:
		h.control(op, r.ctl)
		r.ctl = r.ctl[:0]
	case !r.fin:
	default:
		if !r.done { // an empty last frame
			h.message(r.msgOp == websocket.TextMessage, r.msg)
		}
		r.msgOp, r.done = 0, false
		if cap(r.msg) > 4<<10 {
			r.msg = nil // a large message's buffer goes
		} else {
			r.msg = r.msg[:0]
		}
	}
}

// closeFrame reads a close frame's payload as gorilla/websocket does: the
// code (1005 when there is none) and reason, or a protocol error.
func closeFrame(payload []byte) (code int, err error) {
	if len(payload) < 2 {
		return websocket.CloseNoStatusReceived, nil
	}
	code = int(binary.BigEndian.Uint16(payload))
	switch {
	case !validCloseCode(code):
		return 0, protocolError("bad close code " + strconv.Itoa(code))
	case !utf8.Valid(payload[2:]):
		return 0, protocolError("invalid utf8 payload in close frame")
	}
	return code, nil
}

// validCloseCode is whether a peer may send code (RFC 6455 7.4), as
// gorilla/websocket judges it: 1014 (bad gateway) is for proxies, not
// peers.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1013:
		return true
	}
	return code >= 3000 && code <= 4999
}
