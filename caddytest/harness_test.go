package caddytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-webrtc/caddy-webrtc"
	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyproc"
	"github.com/caddy-webrtc/caddy-webrtc/internal/idlepeers"
)

// Fixed ports of the in-process Caddy: one per test binary, so tests in
// this package never run in parallel with each other.
const (
	adminAddr = "localhost:2999"
	httpPort  = 9080
	httpsPort = 9443
)

// globalOptions starts every test Caddyfile.
const globalOptions = `{
	admin localhost:2999
	skip_install_trust
	local_certs
	http_port 9080
	https_port 9443
	grace_period 1s
	log {
		level ERROR
	}
%s}
`

// initConfig runs only the admin endpoint, quietly.
const initConfig = `{"admin":{"listen":"` + adminAddr + `"},"logging":{"logs":{"default":{"level":"WARN"}}}}`

func TestMain(m *testing.M) {
	if os.Getenv(idlepeers.HelperEnv) != "" {
		// BenchmarkIdlePeersThroughCaddy's client process: no Caddy of
		// its own, its ports are the parent's.
		os.Exit(m.Run())
	}
	// Keep Caddy's storage (internal CA, certificates) out of the home dir.
	dir, err := os.MkdirTemp("", "caddywebrtc-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	os.Setenv("XDG_CONFIG_HOME", dir)
	if err := caddy.Load([]byte(initConfig), true); err != nil {
		fmt.Fprintln(os.Stderr, "starting caddy:", err)
		os.Exit(1)
	}
	code := m.Run()
	caddyproc.RemoveBinary()
	_ = caddy.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// loadCaddyfile makes Caddy run the given site blocks (after the global
// options), failing the test if the config is refused. force reloads even
// an unchanged config.
func loadCaddyfile(t testing.TB, sites string, force bool) {
	t.Helper()
	loadConfig(t, "text/caddyfile", withGlobals("", sites), force)
}

// withGlobals renders a test Caddyfile: the shared global options plus
// extra ones (such as a turn block), then the site blocks.
func withGlobals(extra, sites string) string {
	return fmt.Sprintf(globalOptions, extra) + sites
}

// adminClient posts configs on a fresh connection each time: a load may
// find a kept-alive connection that the admin server is closing (seen as
// "connection reset by peer"), and a POST is not retried.
var adminClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func loadConfig(t testing.TB, contentType, body string, force bool) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+adminAddr+"/load", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if force {
		req.Header.Set("Cache-Control", "must-revalidate")
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		t.Fatalf("loading config: %v", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("loading config: %s: %s", resp.Status, msg)
	}
	// The servers of the old config are gone, and with them the kept-alive
	// connections tests made to them: a DELETE or PUT, which Go does not
	// retry, would find one closed ("EOF").
	http.DefaultClient.CloseIdleConnections()
}

// loadConfigErr returns the admin API's error for a config it refuses.
func loadConfigErr(t testing.TB, contentType, body string) string {
	t.Helper()
	resp, err := adminClient.Post("http://"+adminAddr+"/load", contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("loading config: %v", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("config was accepted, want an error")
	}
	return string(msg)
}

// adminJSON GETs an admin API path and decodes the JSON answer.
func adminJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// eventually polls cond until it holds or the timeout passes: the tests
// wait on conditions, never on fixed sleeps.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
