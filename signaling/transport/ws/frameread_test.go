package ws

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gorilla/websocket"
)

// clientFrame encodes one masked frame as a client sends it.
func clientFrame(rng *rand.Rand, op byte, fin bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], rng.Uint32())
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i&3])
	}
	return b
}

// newTestRand is a seeded source for tests.
func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(7, 8)) }

// recorder is a frameHandler that writes down what it is handed.
type recorder struct{ got []string }

func (r *recorder) message(text bool, data []byte) {
	r.got = append(r.got, fmt.Sprintf("msg text=%v %q", text, data))
}

func (r *recorder) control(op byte, payload []byte) {
	r.got = append(r.got, fmt.Sprintf("ctl %d %q", op, payload))
}

// feedInPieces feeds b to fr in pieces of random sizes.
func feedInPieces(rng *rand.Rand, fr *frameReader, b []byte, h frameHandler) error {
	for len(b) > 0 {
		n := 1 + rng.IntN(min(len(b), 1+rng.IntN(3)*rng.IntN(70000)+rng.IntN(20)))
		// Pieces are fed from a copy, as from a reused read buffer.
		piece := append([]byte(nil), b[:n]...)
		if err := fr.feed(piece, h); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// Messages whole or in fragments, with control frames between the
// fragments, come out whole and in order however the bytes are cut.
func TestFrameReaderReassemblesWhateverThePieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 7, 8, 15, 16, 17, 125, 126, 127, 1000, 65535, 65536, 70000}
	for round := range 300 {
		var wire []byte
		var want []string
		for range 1 + rng.IntN(6) {
			size := sizes[rng.IntN(len(sizes))]
			payload := make([]byte, size)
			for i := range payload {
				payload[i] = byte(rng.Uint32())
			}
			text := rng.IntN(2) == 0
			op := byte(websocket.BinaryMessage)
			if text {
				op = websocket.TextMessage
			}
			parts := 1 + rng.IntN(3)
			for i := 0; i < parts; i++ {
				lo, hi := size*i/parts, size*(i+1)/parts
				if i > 0 {
					op = 0 // a continuation
				}
				wire = append(wire, clientFrame(rng, op, i == parts-1, payload[lo:hi])...)
				if i < parts-1 && rng.IntN(2) == 0 {
					ping := []byte(fmt.Sprint("p", round, i))
					wire = append(wire, clientFrame(rng, websocket.PingMessage, true, ping)...)
					want = append(want, fmt.Sprintf("ctl %d %q", websocket.PingMessage, ping))
				}
			}
			want = append(want, fmt.Sprintf("msg text=%v %q", text, payload))
		}
		fr := &frameReader{maxSize: 1 << 20}
		rec := &recorder{}
		if err := feedInPieces(rng, fr, wire, rec); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(rec.got) != len(want) {
			t.Fatalf("round %d: got %d frames, want %d", round, len(rec.got), len(want))
		}
		for i := range want {
			if rec.got[i] != want[i] {
				t.Fatalf("round %d, frame %d: got %.80s, want %.80s", round, i, rec.got[i], want[i])
			}
		}
		if fr.left != 0 || fr.nhdr != 0 || fr.msgOp != 0 || len(fr.msg) != 0 {
			t.Fatalf("round %d: state left over: %+v", round, fr)
		}
	}
}

// A message longer than maxSize goes on cut at maxSize+1 bytes, which is
// what the session refuses; the rest of it is dropped, and the next
// message comes whole.
func TestFrameReaderCutsLongMessages(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	long := bytes.Repeat([]byte("x"), 5000)
	for _, parts := range []int{1, 3} {
		var wire []byte
		for i := range parts {
			op := byte(websocket.TextMessage)
			if i > 0 {
				op = 0
			}
			wire = append(wire, clientFrame(rng, op, i == parts-1, long[len(long)*i/parts:len(long)*(i+1)/parts])...)
		}
		wire = append(wire, clientFrame(rng, websocket.TextMessage, true, []byte("next"))...)
		for _, whole := range []bool{true, false} {
			fr := &frameReader{maxSize: 1000}
			rec := &recorder{}
			var err error
			if whole {
				err = fr.feed(append([]byte(nil), wire...), rec)
			} else {
				err = feedInPieces(rng, fr, wire, rec)
			}
			want := []string{fmt.Sprintf("msg text=true %q", long[:1001]), `msg text=true "next"`}
			if err != nil || fmt.Sprint(rec.got) != fmt.Sprint(want) {
				t.Fatalf("%d parts, whole %v: got %.60q, %v", parts, whole, rec.got, err)
			}
		}
	}
}

// Frames a client must not send are protocol errors, named as
// gorilla/websocket names them.
func TestFrameReaderRefusesBadFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	unmasked := clientFrame(rng, websocket.TextMessage, true, []byte("hi"))
	unmasked[1] &^= 0x80
	hugeLen := []byte{0x82, 0x80 | 127, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}
	cases := []struct {
		name string
		wire []byte
		want string
	}{
		{"reserved bits", append([]byte{0x80 | 0x40 | 0x10 | websocket.TextMessage}, clientFrame(rng, 0, true, nil)[1:]...), "RSV1 set, RSV3 set"},
		{"bad opcode", clientFrame(rng, 3, true, nil), "bad opcode 3"},
		{"unmasked", unmasked, "bad MASK"},
		{"long control", clientFrame(rng, websocket.PingMessage, true, make([]byte, 126)), "len > 125 for control"},
		{"fragmented control", clientFrame(rng, websocket.PingMessage, false, nil), "FIN not set on control"},
		{"stray continuation", clientFrame(rng, 0, true, []byte("x")), "continuation after FIN"},
		{"data before FIN", append(clientFrame(rng, websocket.TextMessage, false, []byte("a")), clientFrame(rng, websocket.TextMessage, true, []byte("b"))...), "data before FIN"},
		{"negative length", hugeLen, "invalid frame length"},
	}
	for _, tc := range cases {
		fr := &frameReader{maxSize: 1 << 20}
		err := fr.feed(tc.wire, &recorder{})
		if perr, ok := err.(protocolError); !ok || string(perr) != tc.want {
			t.Errorf("%s: got %v, want the protocol error %q", tc.name, err, tc.want)
		}
	}
}

// Close frames are read as gorilla/websocket reads them.
func TestCloseFrames(t *testing.T) {
	cases := []struct {
		payload []byte
		code    int
		err     string
	}{
		{nil, websocket.CloseNoStatusReceived, ""},
		{[]byte{3}, websocket.CloseNoStatusReceived, ""},
		{websocket.FormatCloseMessage(1000, "bye"), 1000, ""},
		{websocket.FormatCloseMessage(4410, ""), 4410, ""},
		{[]byte{0x03, 0xed}, 0, "bad close code 1005"},
		{[]byte{0x03, 0xee}, 0, "bad close code 1006"},
		{[]byte{0x03, 0xe8, 0xff}, 0, "invalid utf8 payload in close frame"},
	}
	for _, tc := range cases {
		code, err := closeFrame(tc.payload)
		if code != tc.code || (err == nil) != (tc.err == "") || (err != nil && string(err.(protocolError)) != tc.err) {
			t.Errorf("close payload %q: got %d, %v; want %d, %q", tc.payload, code, err, tc.code, tc.err)
		}
	}
}
