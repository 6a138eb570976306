package loadtest

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
)

// The load tester shares the machine with the server it measures, so what
// it does per signal is kept cheap: signals are received without a JSON
// decoder when they have the layout both servers send (anything else takes
// the decoder), and a sender's frames go out several per system call.

// quickSignal returns the payload of a signal frame laid out as
// <head with typeKV><dataKey><payload>}, the payload being the last field,
// as both the caddy protocol and PeerJS relay it; ok is false for any
// other frame, which the caller then decodes in full.
func quickSignal(b []byte, typeKV, dataKey string) (data []byte, ok bool) {
	i := bytes.Index(b, []byte(dataKey))
	if i < 0 || len(b) == 0 || b[len(b)-1] != '}' || !bytes.Contains(b[:i], []byte(typeKV)) {
		return nil, false
	}
	return b[i+len(dataKey) : len(b)-1], true
}

// serverSeq reads the seq every caddy protocol server frame starts with.
func serverSeq(b []byte) (uint64, bool) {
	var n int64
	if _, ok := cutInt(b, `{"seq":`, &n); !ok || n <= 0 {
		return 0, false
	}
	return uint64(n), true
}

// parsePayload reads the payload the load tester itself built (see
// run.payload): {"f":<int>,"s":<uint>,"t":<int>,"p":"<padding>"}. A
// payload of any other shape goes through the JSON decoder.
func parsePayload(d []byte) (pl payload, ok bool) {
	var from, sent int64
	if d, ok = cutInt(d, `{"f":`, &from); !ok {
		return pl, false
	}
	var seq int64
	if d, ok = cutInt(d, `,"s":`, &seq); !ok || seq < 0 {
		return pl, false
	}
	if d, ok = cutInt(d, `,"t":`, &sent); !ok {
		return pl, false
	}
	d, ok = bytes.CutPrefix(d, []byte(`,"p":"`))
	// The padding holds no quote, so the first quote closes it; nor may
	// a backslash escape that quote.
	n := len(d)
	if !ok || n < 2 || bytes.IndexByte(d, '"') != n-2 || d[n-1] != '}' || (n > 2 && d[n-3] == '\\') {
		return pl, false
	}
	return payload{From: int(from), Seq: uint64(seq), Sent: sent}, true
}

// cutInt reads prefix and the decimal integer after it into v.
func cutInt(d []byte, prefix string, v *int64) ([]byte, bool) {
	d, ok := bytes.CutPrefix(d, []byte(prefix))
	if !ok {
		return d, false
	}
	end := 0
	if end < len(d) && d[end] == '-' {
		end++
	}
	for end < len(d) && d[end] >= '0' && d[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(string(d[:end]), 10, 64)
	if err != nil {
		return d, false
	}
	*v = n
	return d[end:], true
}

// appendClientText appends msg as one final text frame the way a client
// must send it: masked (RFC 6455 5.3), with a fresh random key per frame.
func appendClientText(b, msg []byte) []byte {
	const finText, masked = 0x81, 0x80
	switch n := len(msg); {
	case n < 126:
		b = append(b, finText, masked|byte(n))
	case n <= 0xffff:
		b = append(b, finText, masked|126, byte(n>>8), byte(n))
	default:
		b = append(b, finText, masked|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, msg...)
	mask(b[start:], key)
	return b
}

// mask XORs p with key, eight bytes at a time.
func mask(p []byte, key [4]byte) {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}
