package wire

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// DecodeInbound parses a peer's frame into in. The common frame, a JSON
// object whose "type", "to" and "data" keys are spelled exactly so and
// whose strings carry no escapes, is parsed in place (in.Data then points
// into data) after one validating pass, with no allocations; anything else
// goes through json.Unmarshal, which gives the same result and the same
// errors. The fast path never accepts what json.Unmarshal would refuse:
// the validating pass has checked the syntax and the parser bails out on
// the rest.
//
// The validating pass is jsontext's (the JSON v2 prototype of the Go team,
// already in Caddy's module graph): four times as fast as json.Valid on a
// signal frame, which made it a tenth of the relay's CPU. It checks RFC
// 7493 (I-JSON), stricter than json.Valid (no invalid UTF-8, no duplicate
// names), so what it refuses still goes to json.Unmarshal and is judged
// exactly as before.
func DecodeInbound(data []byte, in *Inbound) error {
	if jsontext.Value(data).IsValid() && parseSimpleObject(data, in) {
		return nil
	}
	*in = Inbound{}
	return json.Unmarshal(data, in)
}

// parseSimpleObject reads a syntactically valid JSON object's top-level
// members, or reports false when the frame is not one it handles exactly
// as json.Unmarshal would.
func parseSimpleObject(data []byte, in *Inbound) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false // valid JSON but not an object: json.Unmarshal says so
	}
	i = skipSpace(data, i+1)
	for i < len(data) && data[i] == '"' {
		key, end, ok := plainString(data, i)
		if !ok {
			return false
		}
		i = skipSpace(data, end)
		i = skipSpace(data, i+1) // the colon
		vEnd := skipValue(data, i)
		value := data[i:vEnd]
		switch string(key) {
		case "type", "to":
			s, sEnd, ok := plainString(data, i)
			if !ok || sEnd != vEnd || !utf8.Valid(s) {
				// null, a number, escapes, invalid UTF-8 (which
				// json.Unmarshal replaces): json.Unmarshal decides.
				return false
			}
			if len(key) == 4 {
				in.Type = internType(s)
			} else {
				in.To = string(s)
			}
		case "data":
			in.Data = value
		case "seq", "ack":
			n, ok := plainUint(value)
			if !ok {
				return false // json.Unmarshal decides: null, -1, 1.5, "x"
			}
			if key[0] == 's' {
				in.Seq = n
			} else {
				in.Ack = n
			}
		default:
			// json.Unmarshal matches keys case-insensitively.
			for _, k := range inboundKeys {
				if bytes.EqualFold(key, []byte(k)) {
					return false
				}
			}
		}
		i = skipSpace(data, vEnd)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return true
}

// inboundKeys are the keys Inbound has.
var inboundKeys = [...]string{"type", "to", "data", "seq", "ack"}

// internType returns the constant for a known type, so that the common
// frames allocate no string.
func internType(s []byte) string {
	for _, t := range Types {
		if string(s) == t {
			return t
		}
	}
	return string(s)
}

// plainUint parses a JSON number that is a plain unsigned integer of at most
// 15 digits; anything else is left to json.Unmarshal.
func plainUint(v []byte) (uint64, bool) {
	if len(v) == 0 || len(v) > 15 || (len(v) > 1 && v[0] == '0') {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// plainString returns the contents of the string starting at data[i] and
// the index after its closing quote; ok is false when it has escapes.
func plainString(data []byte, i int) (s []byte, end int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, i, false
	}
	j := bytes.IndexByte(data[i+1:], '"')
	if j < 0 {
		return nil, i, false
	}
	s = data[i+1 : i+1+j]
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, i, false
	}
	return s, i + j + 2, true
}

// skipValue returns the index after the valid JSON value starting at i.
func skipValue(data []byte, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			i = skipString(data, i)
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth <= 0 {
				if depth < 0 { // the enclosing object's end: a scalar ended here
					return i
				}
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// skipString returns the index of the closing quote of the string at i.
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return i
}

// RelayFrame builds {"type":"<typ>","from":"<from>","data":<data>} by
// splicing: data is a JSON value the peer sent, already checked to be valid
// JSON and valid UTF-8, and ids are URL-safe base64, so no re-encoding is
// needed. One allocation, shared by every recipient.
func RelayFrame(typ, from string, data []byte) []byte {
	const a, b, c = `{"type":"`, `","from":"`, `","data":`
	out := make([]byte, 0, len(a)+len(typ)+len(b)+len(from)+len(c)+len(data)+1)
	out = append(out, a...)
	out = append(out, typ...)
	out = append(out, b...)
	out = append(out, from...)
	out = append(out, c...)
	out = append(out, data...)
	return append(out, '}')
}
