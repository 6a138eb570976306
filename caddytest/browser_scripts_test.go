//go:build linux

package caddytest

import (
	"embed"
	"strings"
	"testing"
)

// The page-side JavaScript of the browser tests lives in files of its own,
// testdata/browser/*.js, installed in every test page before the page's
// own scripts: checks.js (conditions on the demo page, polled by waitFor)
// and client_cases.js (cases of the client's behaviour).
//
//go:embed testdata/browser/*.js
var browserScripts embed.FS

// pageScripts returns every test script, concatenated.
func pageScripts(t *testing.T) string {
	t.Helper()
	entries, err := browserScripts.ReadDir("testdata/browser")
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, e := range entries {
		b, err := browserScripts.ReadFile("testdata/browser/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
		all.WriteString("\n")
	}
	return all.String()
}
