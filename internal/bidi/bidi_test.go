//go:build linux

package bidi

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		name, raw string
		want      any
	}{
		{"string", `{"type":"string","value":"ok"}`, "ok"},
		{"number", `{"type":"number","value":3}`, 3.0},
		{"fraction", `{"type":"number","value":-1.5}`, -1.5},
		{"infinity", `{"type":"number","value":"Infinity"}`, math.Inf(1)},
		{"minus infinity", `{"type":"number","value":"-Infinity"}`, math.Inf(-1)},
		{"true", `{"type":"boolean","value":true}`, true},
		{"null", `{"type":"null"}`, nil},
		{"undefined", `{"type":"undefined"}`, nil},
		{"date", `{"type":"date","value":"2026-01-02T03:04:05.000Z"}`, "2026-01-02T03:04:05.000Z"},
		{"array", `{"type":"array","value":[{"type":"string","value":"a"},{"type":"number","value":1},{"type":"null"}]}`, []any{"a", 1.0, nil}},
		{"empty array", `{"type":"array","value":[]}`, []any{}},
		{"set", `{"type":"set","value":[{"type":"boolean","value":false}]}`, []any{false}},
		{"object", `{"type":"object","value":[["a",{"type":"number","value":1}],["b",{"type":"array","value":[{"type":"string","value":"x"}]}]]}`,
			map[string]any{"a": 1.0, "b": []any{"x"}}},
		{"map", `{"type":"map","value":[[{"type":"string","value":"k"},{"type":"undefined"}]]}`, map[string]any{"k": nil}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Decode(json.RawMessage(c.raw))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

// Numbers JSON cannot hold keep their identity: NaN, and -0 with its sign.
func TestDecodeSpecialNumbers(t *testing.T) {
	nan, err := Decode(json.RawMessage(`{"type":"number","value":"NaN"}`))
	if err != nil || !math.IsNaN(nan.(float64)) {
		t.Fatalf("NaN: got %v, %v", nan, err)
	}
	zero, err := Decode(json.RawMessage(`{"type":"number","value":"-0"}`))
	if err != nil || zero.(float64) != 0 || !math.Signbit(zero.(float64)) {
		t.Fatalf("-0: got %v, %v", zero, err)
	}
}

// What cannot be data is an error, never a silent zero value: a function,
// a node, an object beyond the serialization depth, a map key that is no
// string, a malformed number.
func TestDecodeRefuses(t *testing.T) {
	for _, raw := range []string{
		`{"type":"function"}`,
		`{"type":"node","sharedId":"x"}`,
		`{"type":"object"}`,
		`{"type":"array"}`,
		`{"type":"map","value":[[{"type":"number","value":1},{"type":"null"}]]}`,
		`{"type":"number","value":"eleven"}`,
		`{"type":"string","value":3}`,
		`not json`,
	} {
		if got, err := Decode(json.RawMessage(raw)); err == nil {
			t.Errorf("%s: decoded as %#v, want an error", raw, got)
		}
	}
}

// fakeBrowser answers script.evaluate with a fixed remote value, and every
// other command with an error, after sending an event first (which the
// client must skip).
func fakeBrowser(t *testing.T, answer string) *httptest.Server {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			var cmd struct {
				ID     int64          `json:"id"`
				Method string         `json:"method"`
				Params map[string]any `json:"params"`
			}
			if ws.ReadJSON(&cmd) != nil {
				return
			}
			_ = ws.WriteJSON(map[string]any{"type": "event", "method": "log.entryAdded", "params": map[string]any{}})
			if cmd.Method != "script.evaluate" || cmd.Params["awaitPromise"] != true {
				_ = ws.WriteJSON(map[string]any{"type": "error", "id": cmd.ID, "error": "unknown command", "message": cmd.Method})
				continue
			}
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"success","id":`+jsonInt(cmd.ID)+`,"result":`+answer+`}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func dialFake(t *testing.T, answer string) *Conn {
	srv := fakeBrowser(t, answer)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEvaluate(t *testing.T) {
	c := dialFake(t, `{"type":"success","realm":"r","result":{"type":"array","value":[{"type":"string","value":"ok"}]}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := c.Evaluate(ctx, "tab", "check()")
	if err != nil || !reflect.DeepEqual(got, []any{"ok"}) {
		t.Fatalf("got %#v, %v", got, err)
	}
	var bidiErr *Error
	if err := c.Reload(ctx, "tab"); !errors.As(err, &bidiErr) || bidiErr.Code != "unknown command" {
		t.Fatalf("an error answer: got %v", err)
	}
}

func TestEvaluateException(t *testing.T) {
	c := dialFake(t, `{"type":"exception","realm":"r","exceptionDetails":{"text":"ReferenceError: check is not defined"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Evaluate(ctx, "tab", "check()")
	var exc *Exception
	if !errors.As(err, &exc) || !strings.Contains(exc.Text, "ReferenceError") {
		t.Fatalf("got %v, want the exception", err)
	}
}

// A connection that ends fails the calls waiting on it instead of leaving
// them hanging.
func TestCallAfterClose(t *testing.T) {
	c := dialFake(t, `{"type":"success","result":{"type":"null"}}`)
	c.Close()
	if _, err := c.Evaluate(context.Background(), "tab", "1"); err == nil {
		t.Fatal("a call on a closed connection succeeded")
	}
}
