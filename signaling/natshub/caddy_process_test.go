package natshub

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestTwoCaddyProcessesShareARoom builds ./cmd/caddy once and runs two
// Caddy processes on loopback, each with a generated Caddyfile naming the
// same embedded NATS; WebSocket clients connected to different processes
// meet in one room, signal each other, and see each other leave when a
// process is killed; when NATS stops, a connected peer stays and a new one
// gets `unavailable`.
func TestTwoCaddyProcessesShareARoom(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy")
	}
	bin := buildCaddy(t)
	srv := startNATS(t)
	portA, portB := startCaddy(t, bin, srv.url()), startCaddy(t, bin, srv.url())
	a := dialRoom(t, portA.port)
	idA := expectFrame(t, a, "welcome").ID
	b := dialRoom(t, portB.port)
	wb := expectFrame(t, b, "welcome")
	if len(wb.Peers) != 1 || wb.Peers[0].ID != idA {
		t.Fatalf("welcome on the second server lists %+v, want %s", wb.Peers, idA)
	}
	if f := expectFrame(t, a, "peer-joined"); f.ID != wb.ID {
		t.Fatalf("peer-joined %+v", f)
	}
	send(t, a, map[string]any{"type": "signal", "to": wb.ID, "data": map[string]string{"sdp": "offer"}})
	if f := expectFrame(t, b, "signal"); f.From != idA || string(f.Data) != `{"sdp":"offer"}` {
		t.Fatalf("signal %+v", f)
	}
	send(t, b, map[string]any{"type": "broadcast", "data": 7})
	if f := expectFrame(t, a, "broadcast"); f.From != wb.ID {
		t.Fatalf("broadcast %+v", f)
	}
	// A killed server says nothing; the other notices within node_timeout.
	if err := portB.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.SetReadDeadline(time.Now().Add(3*testNodeTimeout + 5*time.Second))
	if f := expectFrame(t, a, "peer-left"); f.ID != wb.ID {
		t.Fatalf("peer-left %+v", f)
	}
	// Without NATS, the connected peer stays and newcomers are told to
	// come back later.
	srv.stop()
	eventually(t, 15*time.Second, "a newcomer refused with unavailable", func() bool {
		c := dialRoom(t, portA.port)
		var f wireFrame
		return c.ReadJSON(&f) == nil && f.Type == "error" && f.Code == "unavailable"
	})
	send(t, a, map[string]any{"type": "ping"})
	_ = a.SetReadDeadline(time.Now().Add(10 * time.Second))
	expectFrame(t, a, "pong")
}

type caddyProc struct {
	cmd  *exec.Cmd
	port int
}

func buildCaddy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building caddy: %v\n%s", err, out)
	}
	return bin
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// startCaddy runs Caddy on a free loopback port and waits until it
// answers.
func startCaddy(t *testing.T, bin, natsURL string) caddyProc {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %s
}
http://127.0.0.1:%d {
	webrtc_signaling /ws {
		backend nats {
			url %s
			prefix proc
			node_timeout %s
		}
	}
}
`, filepath.Join(dir, "data"), port, natsURL, testNodeTimeout)
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	logFile, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("caddy on port %d:\n%s", port, log)
		}
	})
	eventually(t, 30*time.Second, "caddy listening", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return caddyProc{cmd: cmd, port: port}
}

func dialRoom(t *testing.T, port int) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws?room=standup", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c
}

type wireFrame struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	From  string          `json:"from"`
	Code  string          `json:"code"`
	Data  json.RawMessage `json:"data"`
	Peers []struct {
		ID string `json:"id"`
	} `json:"peers"`
}

// expectFrame reads frames until one of type typ, failing on an error
// frame; pings and pongs are skipped.
func expectFrame(t *testing.T, c *websocket.Conn, typ string) wireFrame {
	t.Helper()
	for {
		var f wireFrame
		if err := c.ReadJSON(&f); err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		switch {
		case f.Type == typ:
			return f
		case f.Type == "error":
			t.Fatalf("waiting for %s: error %s", typ, f.Code)
		case f.Type != "ping" && f.Type != "pong":
			t.Fatalf("got %s, want %s", f.Type, typ)
		}
	}
}

func send(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	if err := c.WriteJSON(v); err != nil {
		t.Fatal(err)
	}
}
