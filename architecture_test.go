package caddywebrtc

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

const modulePath = "github.com/caddy-webrtc/caddy-webrtc"

// layers ranks the layered packages of docs/architecture.md: a package may
// import only packages of a lower rank. Packages not listed are the top
// layer, which may import anything.
var layers = map[string]int{
	"signaling/wire":                0,
	"signaling/natshub/link":        0,
	"signaling/webclient":           0,
	"internal/caddyfileopt":         0,
	"signaling/hub":                 1,
	"turncreds":                     1,
	"signaling/session":             2,
	"signaling/transport/tunnel":    3,
	"signaling/transport/sse":       4,
	"signaling/transport/ws":        4,
	"signaling/transport/ws/evloop": 0,
	"signaling":                     5,
	"signaling/natshub":             5,
	"signaling/hub/hubtest":         2,
	"turnapp":                       2,
}

const top = 1 << 10

func rank(pkg string) int {
	if r, ok := layers[pkg]; ok {
		return r
	}
	return top
}

// TestArchitecture: no package imports upward or sideways, and every path
// docs/architecture.md names exists.
func TestArchitecture(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from := strings.TrimPrefix(strings.TrimPrefix(fields[0], modulePath), "/")
		for _, imp := range fields[1:] {
			to, ok := strings.CutPrefix(imp, modulePath+"/")
			if !ok {
				continue
			}
			if rank(to) >= rank(from) && !(rank(from) == top && rank(to) == top) {
				t.Errorf("%s (layer %d) imports %s (layer %d)", from, rank(from), to, rank(to))
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

// checkNamedPaths fails for each path the doc names that is neither in the
// repository nor (a bare file name, or natshub/...) in signaling/. Its last
// section, the layout still to come, names packages that do not exist yet.
func checkNamedPaths(t *testing.T, doc string) {
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	now, _, _ := strings.Cut(string(b), "## Where it goes next")
	for _, m := range named.FindAllStringSubmatch(now, -1) {
		p := m[1]
		if !strings.Contains(p, "/") && !strings.HasSuffix(p, ".go") {
			continue // a word, not a path
		}
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if _, err := os.Stat("signaling/" + p); err == nil {
			continue
		}
		t.Errorf("%s names %s, which is not in the repository", doc, p)
	}
}
