package caddywebrtc

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/caddy-webrtc/caddy-webrtc"

// layerRow is a row of docs/architecture.md's layer table: its rank and
// its package. The table is the layering: a package may import only
// packages of a lower rank; packages it does not list are the top layer,
// which may import anything.
var layerRow = regexp.MustCompile("(?m)^\\| (\\d+) \\| `([a-z_/]+)` \\|")

// docLayers reads the layer table.
func docLayers(t *testing.T) map[string]int {
	b, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	layers := make(map[string]int)
	for _, m := range layerRow.FindAllStringSubmatch(string(b), -1) {
		r, _ := strconv.Atoi(m[1])
		layers[m[2]] = r
	}
	if len(layers) == 0 {
		t.Fatal("docs/architecture.md has no layer table")
	}
	return layers
}

const top = 1 << 10

func rank(layers map[string]int, pkg string) int {
	if r, ok := layers[pkg]; ok {
		return r
	}
	return top
}

// TestArchitecture: no package imports upward or sideways, and every path
// docs/architecture.md names exists.
func TestArchitecture(t *testing.T) {
	layers := docLayers(t)
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from := strings.TrimPrefix(strings.TrimPrefix(fields[0], modulePath), "/")
		if _, listed := layers[from]; !listed && strings.HasPrefix(from, "signaling") {
			t.Errorf("%s is in no layer of docs/architecture.md: place it", from)
		}
		for _, imp := range fields[1:] {
			to, ok := strings.CutPrefix(imp, modulePath+"/")
			if !ok {
				continue
			}
			rf, rt := rank(layers, from), rank(layers, to)
			if rt >= rf && !(rf == top && rt == top) {
				t.Errorf("%s (layer %d) imports %s (layer %d)", from, rf, to, rt)
			}
		}
	}
	for pkg := range layers {
		if _, err := os.Stat(pkg); err != nil {
			t.Errorf("layer table names %s: %v", pkg, err)
		}
	}
	checkNamedPaths(t, "docs/architecture.md")
}

// named is a path in backquotes: a directory, or a Go file, of the repo.
var named = regexp.MustCompile("`([a-z_/]+(?:\\.go)?)`")

// bulletDir is the directory a bullet of the file lists is about, as in
// "- Session (`signaling/session/`): ...": its bare file names are there.
var bulletDir = regexp.MustCompile("^- [^(]*\\(`([a-z_/]+/)`\\)")

// checkNamedPaths fails for each path the doc names that is in the
// repository neither as it is, nor under signaling/, nor, in a bullet about
// a directory, in that directory.
func checkNamedPaths(t *testing.T, doc string) {
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	dir := ""
	for _, line := range strings.Split(string(b), "\n") {
		if m := bulletDir.FindStringSubmatch(line); m != nil {
			dir = m[1]
		} else if !strings.HasPrefix(line, "  ") {
			dir = "" // the bullet, and its continuation lines, ended
		}
		for _, m := range named.FindAllStringSubmatch(line, -1) {
			if p := m[1]; (strings.Contains(p, "/") || strings.HasSuffix(p, ".go")) && !exists(p, "", "signaling/", dir) {
				t.Errorf("%s names %s, which is not in the repository", doc, p)
			}
		}
	}
}

// exists reports whether p is under any of dirs.
func exists(p string, dirs ...string) bool {
	for _, d := range dirs {
		if _, err := os.Stat(d + p); err == nil && (d != "" || p != "") {
			return true
		}
	}
	return false
}
