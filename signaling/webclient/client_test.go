package webclient

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// These tests keep client.js and client.d.ts in step without a JavaScript
// toolchain: what the module exports, the options it reads and the events
// it emits must all be declared, and it must stay free of imports.

// matches returns the first submatch of every match of re in s, sorted and
// without duplicates.
func matches(re, s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// block returns the text of s from the line starting with start up to the
// next line that is just a closing brace.
func block(t *testing.T, s, start string) string {
	t.Helper()
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("no %q", start)
	}
	j := strings.Index(s[i:], "\n}")
	if j < 0 {
		t.Fatalf("%q is not closed", start)
	}
	return s[i : i+j]
}

func readBoth(t *testing.T) (js, dts string) {
	t.Helper()
	a, err := files.ReadFile("client.js")
	if err != nil {
		t.Fatal(err)
	}
	b, err := files.ReadFile("client.d.ts")
	if err != nil {
		t.Fatal(err)
	}
	return string(a), string(b)
}

func TestClientDeclarations(t *testing.T) {
	js, dts := readBoth(t)
	options := block(t, dts, "export interface RoomClientOptions")
	events := block(t, dts, "export interface RoomClientEventMap")
	tests := []struct {
		what     string
		used     []string // found in client.js
		declared []string // found in client.d.ts
	}{
		{
			"exports",
			matches(`(?m)^export (?:async )?(?:class|function|const) (\w+)`, js),
			matches(`(?m)^export declare (?:class|function|const) (\w+)`, dts),
		},
		{
			"options",
			append(matches(`(?m)^  (\w+):`, block(t, js, "const DEFAULTS")), "room"),
			matches(`(?m)^  (\w+)\??:`, options),
		},
		{
			"events",
			matches(`this\.#emit\("(\w+)"`, js),
			matches(`(?m)^  (\w+): CustomEvent`, events),
		},
		{
			// Methods and accessors; addEventListener and
			// removeEventListener are EventTarget's, typed per event.
			"RoomClient members",
			matches(`(?m)^  (?:get |async )?(\w+)\(`, block(t, js, "export class RoomClient")),
			slices.DeleteFunc(matches(`(?m)^  (?:readonly )?(\w+)[(:]`, block(t, dts, "export declare class RoomClient")),
				func(m string) bool { return strings.HasSuffix(m, "EventListener") }),
		},
		{
			// Every code the client makes up itself is declared.
			"client error codes",
			matches(`(?:RoomError|#error)\("(\w+)"`, js),
			matches(`"(\w+)"`, union(t, dts, "ClientErrorCode")),
		},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			if len(tc.used) == 0 {
				t.Fatal("found none in client.js")
			}
			slices.Sort(tc.used)
			tc.used = slices.Compact(tc.used)
			if !slices.Equal(tc.used, tc.declared) {
				t.Fatalf("client.js has %v, client.d.ts declares %v", tc.used, tc.declared)
			}
		})
	}
}

// union returns the text of the string literal union type name in dts.
func union(t *testing.T, dts, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)export type ` + name + ` =(.*?);`).FindStringSubmatch(dts)
	if m == nil {
		t.Fatalf("client.d.ts has no type %s", name)
	}
	return m[1]
}

// TestClientKeepsInternalsPrivate: RoomClient has no public fields, so
// client.d.ts (methods and accessors) is the whole API. Its state lives in
// # fields, which a page cannot reach.
func TestClientKeepsInternalsPrivate(t *testing.T) {
	js, _ := readBoth(t)
	class := block(t, js, "export class RoomClient")
	if fields := matches(`this\.(\w+)\s*=[^=]`, class); len(fields) > 0 {
		t.Fatalf("RoomClient assigns public fields %v: make them # fields, or declare accessors in client.d.ts", fields)
	}
	if fields := matches(`(?m)^  (\w+)\s*[=;]`, class); len(fields) > 0 {
		t.Fatalf("RoomClient declares public fields %v", fields)
	}
}

// TestClientHasNoDependencies: no static or dynamic imports (a JSDoc type
// import, {import("./client")...}, is fine).
func TestClientHasNoDependencies(t *testing.T) {
	js, _ := readBoth(t)
	if imports := regexp.MustCompile(`(?m)^\s*import\s|[^{]\bimport\(|\brequire\(`).FindAllString(js, -1); len(imports) > 0 {
		t.Fatalf("client.js must load nothing else (one <script type=module> import); found %q", imports)
	}
}
