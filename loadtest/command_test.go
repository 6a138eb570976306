package loadtest

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-webrtc/caddy-webrtc/bench/barerelay/relay"
)

// runCobra builds the command the way Caddy's CLI does and runs it.
func runCobra(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	reg, ok := caddycmd.Commands()[CommandName]
	if !ok {
		t.Fatalf("command %q is not registered", CommandName)
	}
	cmd := &cobra.Command{Use: reg.Name, SilenceUsage: true}
	reg.CobraFunc(cmd)
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestCommandJSON(t *testing.T) {
	srv := httptest.NewServer(relay.New())
	defer srv.Close()
	out, progress, err := runCobra(t, "--url", wsURL(srv, "/rtc/ws"), "--peers", "4", "--room-size", "2",
		"--rate", "20", "--duration", "500ms", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, progress)
	}
	var s Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("output is not a JSON summary: %v\n%s", err, out)
	}
	checkClean(t, s, 4)
	if s.RoomSize != 2 || s.Rate != 20 {
		t.Errorf("flags not applied: %+v", s)
	}
}

func TestCommandText(t *testing.T) {
	srv := httptest.NewServer(relay.New())
	defer srv.Close()
	out, _, err := runCobra(t, "--url", wsURL(srv, "/"), "--peers", "2", "--rate", "0", "--duration", "100ms")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"connected 2  failed 0", "idle", "join       p50"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestCommandNeedsURL(t *testing.T) {
	if _, _, err := runCobra(t, "--peers", "2"); err == nil || !strings.Contains(err.Error(), "--url") {
		t.Fatalf("err = %v, want one about --url", err)
	}
}
