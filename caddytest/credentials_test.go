package caddytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v4"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

const (
	credsSecret = "integration-secret"
	turnAddr    = "127.0.0.1:14781" // the external pion/turn server these tests start
)

// credentialsSite issues credentials for an external TURN server at
// turnAddr, over HTTP and in the signaling welcome.
const credentialsSite = `
http://localhost:9080 {
	handle /rtc/credentials {
		turn_credentials {
			secret ` + credsSecret + `
			ttl 10m
			user {http.request.uri.query.user}
			uris turn:` + turnAddr + `?transport=udp
			stun stun:` + turnAddr + `
		}
	}
	handle /rtc/* {
		webrtc_signaling {
			credentials {
				secret ` + credsSecret + `
				uris turn:` + turnAddr + `
			}
		}
	}
}
`

// iceAnswer is the credentials route's default JSON shape.
type iceAnswer struct {
	ICEServers []struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
	} `json:"iceServers"`
	TTL     int64 `json:"ttl"`
	Expires int64 `json:"expires"`
}

// startTURN runs a pion/turn server on loopback that checks TURN REST
// credentials under secret, the way coturn's use-auth-secret does.
func startTURN(t *testing.T, secret string) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", turnAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:       "test",
		AuthHandler: turn.LongTermTURNRESTAuthHandler(secret, nil),
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.ParseIP("127.0.0.1"),
				Address:      "127.0.0.1",
			},
			PermissionHandler: func(_ net.Addr, ip net.IP) bool { return ip.IsLoopback() },
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
}

// allocate asks the external TURN server at turnAddr for a relay with the
// given credentials.
func allocate(t *testing.T, username, password string) error {
	t.Helper()
	relay, err := turnClientAt(t, "udp", turnAddr, username, password, nil).Allocate()
	if err != nil {
		return err
	}
	return relay.Close()
}

func getJSON(t *testing.T, method, url string, v any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %s: %v", method, url, b, err)
		}
	}
	return resp
}

func TestCredentialsAllocateOnTURNServer(t *testing.T) {
	loadCaddyfile(t, credentialsSite, false)
	startTURN(t, credsSecret)

	var ans iceAnswer
	resp := getJSON(t, http.MethodGet, "http://localhost:9080/rtc/credentials?user=alice", &ans)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("got %s, Cache-Control %q, Content-Type %q", resp.Status, resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
	}
	if len(ans.ICEServers) != 2 || ans.ICEServers[0].URLs[0] != "stun:"+turnAddr || ans.TTL != 600 {
		t.Fatalf("answer %+v", ans)
	}
	turnServer := ans.ICEServers[1]
	if !strings.HasSuffix(turnServer.Username, ":alice") {
		t.Fatalf("username %q does not carry the user", turnServer.Username)
	}
	if exp := time.Unix(ans.Expires, 0); exp.Before(time.Now().Add(9*time.Minute)) || exp.After(time.Now().Add(11*time.Minute)) {
		t.Fatalf("expires %s, want about 10 minutes from now", exp)
	}

	if err := allocate(t, turnServer.Username, turnServer.Credential); err != nil {
		t.Fatalf("issued credentials refused by the TURN server: %v", err)
	}
	tampered := []byte(turnServer.Credential)
	tampered[0] ^= 1
	expired := turncreds.Username(time.Now().Add(-time.Minute), "alice")
	refusals := []struct{ name, user, pass string }{
		{"tampered password", turnServer.Username, string(tampered)},
		{"tampered user", strings.Replace(turnServer.Username, "alice", "mallory", 1), turnServer.Credential},
		{"expired", expired, turncreds.Password(credsSecret, expired)},
		{"other secret", turnServer.Username, turncreds.Password("not-the-secret", turnServer.Username)},
	}
	for _, r := range refusals {
		if err := allocate(t, r.user, r.pass); err == nil {
			t.Errorf("%s: allocation succeeded", r.name)
		}
	}

	// POST works too; the draft's shape on request.
	var draft struct {
		Username string   `json:"username"`
		Password string   `json:"password"`
		TTL      int64    `json:"ttl"`
		URIs     []string `json:"uris"`
	}
	getJSON(t, http.MethodPost, "http://localhost:9080/rtc/credentials?service=turn", &draft)
	if draft.Username == "" || draft.Password == "" || draft.TTL != 600 || len(draft.URIs) != 1 {
		t.Fatalf("service=turn answer %+v", draft)
	}
	if err := allocate(t, draft.Username, draft.Password); err != nil {
		t.Fatalf("draft-shape credentials refused: %v", err)
	}
	resp = getJSON(t, http.MethodDelete, "http://localhost:9080/rtc/credentials", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
		t.Fatalf("DELETE: %s, Allow %q", resp.Status, resp.Header.Get("Allow"))
	}
}

func TestWelcomeCarriesICEServers(t *testing.T) {
	loadCaddyfile(t, credentialsSite, false)
	startTURN(t, credsSecret)
	_, w1 := join(t, roomURL+"ice")
	_, w2 := join(t, roomURL+"ice")
	if len(w1.ICEServers) != 1 || w1.ICEServers[0].URLs[0] != "turn:"+turnAddr {
		t.Fatalf("welcome iceServers %+v", w1.ICEServers)
	}
	a, b := w1.ICEServers[0], w2.ICEServers[0]
	if a.Username == b.Username && a.Credential == b.Credential {
		t.Fatal("two peers got the same credentials")
	}
	if err := allocate(t, a.Username, a.Credential); err != nil {
		t.Fatalf("welcome credentials refused: %v", err)
	}
}

// errorsSite answers every handler error through handle_errors, with the
// error's status and text, so a test can tell its answers from the ones a
// handler writes itself.
const errorsSite = `
http://localhost:9080 {
	handle /rtc/credentials {
		turn_credentials {
			secret ` + credsSecret + `
			uris turn:` + turnAddr + `
		}
	}
	handle /stun-only/credentials {
		turn_credentials {
			secret ` + credsSecret + `
			stun stun:` + turnAddr + `
		}
	}
	handle_errors {
		respond "handled {err.status_code} {err.status_text}" {err.status_code}
	}
}
`

// turn_credentials refusals are handler errors, so a site's handle_errors
// answers them (the 405 keeping its Allow header); credentials are not.
func TestCredentialsErrorsGoThroughHandleErrors(t *testing.T) {
	loadCaddyfile(t, errorsSite, false)
	tests := []struct {
		method, path string
		code         int
		allow        string
	}{
		{http.MethodDelete, "/rtc/credentials", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{http.MethodPut, "/rtc/credentials", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{http.MethodGet, "/rtc/credentials?service=stun", http.StatusBadRequest, ""},
		{http.MethodGet, "/stun-only/credentials?service=turn", http.StatusServiceUnavailable, ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := request(t, tc.method, "http://localhost:9080"+tc.path)
			want := fmt.Sprintf("handled %d %s", tc.code, http.StatusText(tc.code))
			if resp.StatusCode != tc.code || body != want {
				t.Fatalf("got %s %q, want %d %q from handle_errors", resp.Status, body, tc.code, want)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
	var ans iceAnswer
	if resp := getJSON(t, http.MethodGet, "http://localhost:9080/rtc/credentials", &ans); resp.StatusCode != http.StatusOK || len(ans.ICEServers) != 1 {
		t.Fatalf("credentials: %s %+v", resp.Status, ans)
	}
}

// request sends a body-less request and returns the answer and its body.
func request(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
