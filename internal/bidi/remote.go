//go:build linux

package bidi

import (
	"encoding/json"
	"fmt"
	"math"
)

// remoteValue is the protocol's serialization of a JavaScript value
// (script.RemoteValue): a type and, for most types, a value.
type remoteValue struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// Decode turns a serialized remote value into the Go value encoding/json
// would give for the same value as JSON: string, float64, bool, nil (null
// and undefined), []any (array, set) and map[string]any (object, map).
// Numbers JSON cannot hold (NaN, -0, ±Infinity) come as float64 too. A date
// is its ISO string. Other types (functions, nodes, ...) are an error: the
// tests only read data.
func Decode(raw json.RawMessage) (any, error) {
	var v remoteValue
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("bidi: decoding a remote value: %w", err)
	}
	switch v.Type {
	case "undefined", "null":
		return nil, nil
	case "string", "date":
		var s string
		err := json.Unmarshal(v.Value, &s)
		return s, err
	case "boolean":
		var b bool
		err := json.Unmarshal(v.Value, &b)
		return b, err
	case "number":
		return decodeNumber(v.Value)
	case "array", "set":
		return decodeList(v)
	case "object", "map":
		return decodeObject(v)
	}
	return nil, fmt.Errorf("bidi: a remote value of type %q cannot be decoded", v.Type)
}

// decodeNumber reads a number, which is a JSON number or, for the values
// JSON cannot hold, a string.
func decodeNumber(raw json.RawMessage) (any, error) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var f float64
		err := json.Unmarshal(raw, &f)
		return f, err
	}
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "-0":
		return math.Copysign(0, -1), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	return nil, fmt.Errorf("bidi: unknown number %q", s)
}

// decodeList decodes an array's or a set's elements. Beyond the
// serialization's depth limit the elements are left out: an error, not an
// empty list.
func decodeList(v remoteValue) (any, error) {
	if v.Value == nil {
		return nil, fmt.Errorf("bidi: a %s beyond the serialization depth", v.Type)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v.Value, &items); err != nil {
		return nil, err
	}
	out := make([]any, len(items))
	for i, item := range items {
		var err error
		if out[i], err = Decode(item); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeObject decodes an object's or a map's entries, each a [key, value]
// pair whose key is a string or, in a map, a remote value (which must
// decode to a string here, as JSON keys are).
func decodeObject(v remoteValue) (any, error) {
	if v.Value == nil {
		return nil, fmt.Errorf("bidi: an %s beyond the serialization depth", v.Type)
	}
	var entries [][2]json.RawMessage
	if err := json.Unmarshal(v.Value, &entries); err != nil {
		return nil, err
	}
	out := make(map[string]any, len(entries))
	for _, e := range entries {
		key, err := decodeKey(e[0])
		if err != nil {
			return nil, err
		}
		if out[key], err = Decode(e[1]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeKey(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	k, err := Decode(raw)
	if err != nil {
		return "", err
	}
	if s, ok := k.(string); ok {
		return s, nil
	}
	return "", fmt.Errorf("bidi: a map key %v that is no string", k)
}
