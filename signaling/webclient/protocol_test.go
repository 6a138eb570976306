package webclient_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/webclient"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// TestFatalCodesMatchProtocol: the client gives up (no reconnect) exactly
// after the server's fatal errors of signaling/wire/codes.go; after 1001
// (going away) and 4408 (too slow) a reconnect can succeed. After 4410
// (replaced) another connection holds the session: reconnecting would
// evict it in turn. After 4401 the same room token fails again, and after
// 4429 the same flood would. After 4404 (room_closed) and 4406 (removed)
// the site's backend wants the client out. rate_limited is no fatal code: its error
// frame also reports single dropped frames.
func TestFatalCodesMatchProtocol(t *testing.T) {
	w := httptest.NewRecorder()
	webclient.Serve(w, httptest.NewRequest("GET", "/rtc/client.js", nil))
	js := w.Body.String()
	set := func(name string) []string {
		m := regexp.MustCompile(`const ` + name + ` = new Set\(\[([^\]]*)\]\)`).FindStringSubmatch(js)
		if m == nil {
			t.Fatalf("client.js has no %s set", name)
		}
		var out []string
		for _, v := range regexp.MustCompile(`"?([\w]+)"?`).FindAllStringSubmatch(m[1], -1) {
			out = append(out, v[1])
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		want []string
	}{
		{"FATAL_CLOSE", []string{
			strconv.Itoa(wire.CloseMissingRoom),
			strconv.Itoa(wire.CloseUnauthorized),
			strconv.Itoa(wire.CloseForbiddenOrigin),
			strconv.Itoa(wire.CloseRoomClosed),
			strconv.Itoa(wire.CloseRemoved),
			strconv.Itoa(wire.CloseRoomFull),
			strconv.Itoa(wire.CloseReplaced),
			strconv.Itoa(wire.CloseTooLarge),
			strconv.Itoa(wire.CloseRateLimited),
		}},
		{"FATAL_CODES", []string{
			wire.CodeRoomFull,
			wire.CodeForbiddenOrigin,
			wire.CodeMissingRoom,
			wire.CodeInvalidRoom,
			wire.CodeTooLarge,
			wire.CodeReplaced,
			wire.CodeUnauthorized,
			wire.CodeRoomClosed,
			wire.CodeRemoved,
		}},
	}
	for _, tc := range tests {
		slices.Sort(tc.want)
		if got := set(tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestServerErrorCodesDeclared: client.d.ts's ServerErrorCode union lists
// exactly the error codes of signaling/wire/codes.go, so that a new server
// code shows up in the client's types.
func TestServerErrorCodesDeclared(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../wire/codes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			if lit, ok := spec.Values[i].(*ast.BasicLit); ok && strings.HasPrefix(name.Name, "Code") && lit.Kind == token.STRING {
				code, _ := strconv.Unquote(lit.Value)
				want = append(want, code)
			}
		}
		return true
	})
	if len(want) == 0 {
		t.Fatal("found no Code constants in wire/codes.go")
	}
	w := httptest.NewRecorder()
	webclient.Serve(w, httptest.NewRequest("GET", "/rtc/client.d.ts", nil))
	m := regexp.MustCompile(`(?s)export type ServerErrorCode =(.*?);`).FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatal("client.d.ts has no ServerErrorCode type")
	}
	var got []string
	for _, v := range regexp.MustCompile(`"(\w+)"`).FindAllStringSubmatch(m[1], -1) {
		got = append(got, v[1])
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ServerErrorCode = %v, wire/codes.go has %v", got, want)
	}
}
