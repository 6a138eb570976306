package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// CI does not run bench/compare.sh (minutes of load on a shared machine);
// it only keeps the script parsable and the relay buildable.

func TestCompareScriptParses(t *testing.T) {
	if out, err := exec.Command("bash", "-n", filepath.Join("..", "compare.sh")).CombinedOutput(); err != nil {
		t.Fatalf("bash -n bench/compare.sh: %v\n%s", err, out)
	}
}

func TestBuilds(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "build", "-o", filepath.Join(t.TempDir(), "barerelay"), ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./bench/barerelay: %v\n%s", err, out)
	}
}
