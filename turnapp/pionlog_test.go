package turnapp

import (
	"bytes"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/pion/stun/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	zapobserver "go.uber.org/zap/zaptest/observer"
)

func TestPionLoggerAdapter(t *testing.T) {
	core, logs := zapobserver.New(zapcore.DebugLevel)
	logger := zap.New(core)
	l := pionLoggerFactory{logger: func() *zap.Logger { return logger }}.NewLogger("turn")
	l.Errorf("Failed to close conn: %s", "broken pipe")
	l.Warn("a warning")
	l.Info("per request")
	l.Infof("per %s", "request")
	l.Debugf("Received ChannelData from %s", "127.0.0.1:1")
	l.Trace("per packet")
	entries := logs.AllUntimed()
	if len(entries) != 2 {
		t.Fatalf("got %d lines, want the error and the warning: %v", len(entries), entries)
	}
	for i, want := range []struct{ msg, level string }{{"Failed to close conn: broken pipe", "error"}, {"a warning", "warn"}} {
		e := entries[i]
		if e.Message != want.msg || e.Level != zapcore.DebugLevel || stringField(e, "pion_level") != want.level || stringField(e, "pion_scope") != "turn" {
			t.Errorf("line %d: %s %q %v, want debug %q with pion_level %s", i, e.Level, e.Message, e.ContextMap(), want.msg, want.level)
		}
	}
	// With debug off, pion's lines cost no formatting and write nothing.
	quietCore, quietLogs := zapobserver.New(zapcore.InfoLevel)
	quiet := zap.New(quietCore)
	pionLoggerFactory{logger: func() *zap.Logger { return quiet }}.NewLogger("turn").Errorf("x %d", 1)
	if quietLogs.Len() != 0 {
		t.Error("pion line written at info level")
	}
}

// stderrCapture collects what is written to os.Stderr until done.
type stderrCapture struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	old  *os.File
	w    *os.File
	read sync.WaitGroup
}

// captureStderr points os.Stderr at a pipe. pion's default logger takes
// os.Stderr when a server starts, so this must come first.
func captureStderr(t *testing.T) *stderrCapture {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &stderrCapture{old: os.Stderr, w: w}
	os.Stderr = w
	c.read.Add(1)
	go func() {
		defer c.read.Done()
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			c.mu.Lock()
			c.buf.Write(buf[:n])
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { c.done() })
	return c
}

// String is what was written so far.
func (c *stderrCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// done restores os.Stderr and returns what was written meanwhile.
func (c *stderrCapture) done() string {
	if os.Stderr == c.w {
		os.Stderr = c.old
		_ = c.w.Close()
		c.read.Wait()
	}
	return c.String()
}

// A TURNS client that resets its connection makes pion fail to close it
// (TLS cannot send its close_notify), which pion reports at error level:
// that line must reach the app's logger at debug level, not stderr.
func TestPionErrorsGoToAppLogNotStderr(t *testing.T) {
	stderr := captureStderr(t)
	ts := startServer(t, policy{})
	conn := ts.dialTLS(t)
	// A binding round trip first, so the server has finished its side of
	// the handshake before the reset.
	if _, err := conn.Write(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 1500)); err != nil {
		t.Fatal(err)
	}
	tcp := conn.NetConn().(*net.TCPConn)
	_ = tcp.SetLinger(0) // close with a reset
	_ = tcp.Close()
	const want = "Failed to close conn"
	inAppLog := func() bool {
		for _, e := range ts.logs.FilterMessageSnippet(want).AllUntimed() {
			if e.Level == zapcore.DebugLevel && stringField(e, "pion_level") == "error" {
				return true
			}
		}
		return false
	}
	eventually(t, "pion's close error", func() bool { return inAppLog() || strings.Contains(stderr.String(), want) })
	if out := stderr.done(); strings.Contains(out, want) || strings.Contains(out, "turn ERROR") {
		t.Errorf("pion wrote to stderr: %q", out)
	}
	if !inAppLog() {
		t.Error("pion's close error is not in the app log at debug level")
	}
}
