package caddytest

import (
	"encoding/json"
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
	turnAddr    = "127.0.0.1:34781" // the external pion/turn server these tests start
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
