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
			matches(`this\.emit\("(\w+)"`, js),
			matches(`(?m)^  (\w+): CustomEvent`, events),
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

// TestClientHasNoDependencies: no static or dynamic imports (a JSDoc type
// import, {import("./client")...}, is fine).
func TestClientHasNoDependencies(t *testing.T) {
	js, _ := readBoth(t)
	if imports := regexp.MustCompile(`(?m)^\s*import\s|[^{]\bimport\(|\brequire\(`).FindAllString(js, -1); len(imports) > 0 {
		t.Fatalf("client.js must load nothing else (one <script type=module> import); found %q", imports)
	}
}
