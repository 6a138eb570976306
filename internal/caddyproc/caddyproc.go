// Package caddyproc runs this module's Caddy (./cmd/caddy) as child
// processes for tests that need more than one Caddy: Caddy is a
// process-wide singleton, so two servers are two processes. The binary is
// built once per test binary; a TestMain calls RemoveBinary after m.Run.
package caddyproc

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{} // package → binary
)

// Binary builds ./cmd/caddy, the first time it is called in this test
// binary, and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	return Build(t, "./cmd/caddy")
}

// Build builds the main package pkg (a path in this module, or a
// command of a module it requires) once per test binary and returns the
// binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "caddyproc")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(buildDir, fmt.Sprint("bin", len(built)))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin
}

// RemoveBinary deletes what Binary and Build built; TestMain calls it
// after m.Run.
func RemoveBinary() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// child process to listen on. It is drawn from below Linux's ephemeral
// range (32768-60999), where the kernel never puts the local port of an
// outgoing connection: a port the kernel hands out for 127.0.0.1:0 may be
// taken by one of those (other tests run in parallel) before the child
// binds it.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// Proc is one child process (Caddy, say) listening on Port.
type Proc struct {
	Port int
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited and is reaped
}

// Globals start every generated Caddyfile: no admin endpoint, no
// automatic HTTPS, storage in the process's own directory (%s).
const Globals = `{
	admin off
	auto_https off
	storage file_system %s
	log {
		level WARN
	}
}
`

// Start runs Caddy with the Caddyfile Globals plus sites(port), where port
// is a free loopback port the sites should listen on, and waits until it
// accepts connections. The process is killed when the test ends, and its
// log shown if the test failed.
func Start(t testing.TB, sites func(port int) string) *Proc {
	t.Helper()
	dir := t.TempDir()
	port := FreePort(t)
	conf := fmt.Sprintf(Globals, filepath.Join(dir, "data")) + sites(port)
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return Run(t, dir, port, Binary(t), "run", "--config", file, "--adapter", "caddyfile")
}

// Run starts bin with args in dir (also its HOME, and where its output
// goes) and waits until it accepts connections on the loopback port. The
// process is killed when the test ends, and its output shown if the test
// failed.
func Run(t testing.TB, dir string, port int, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Port: port, log: filepath.Join(dir, "log")}
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logFile.Close() // the child holds its own descriptor
	p.done = make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s on port %d:\n%s", filepath.Base(bin), port, p.Log())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", p.Addr())
		if err == nil {
			c.Close()
			return p
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("%s on port %d not listening: %v\n%s", filepath.Base(bin), port, err, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr is the process's host:port.
func (p *Proc) Addr() string { return fmt.Sprintf("127.0.0.1:%d", p.Port) }

// Kill ends the process with SIGKILL, as a crash would, and reaps it.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *Proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Log is what the process has logged so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }
