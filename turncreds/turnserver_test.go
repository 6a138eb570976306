package turncreds

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/pion/logging"
	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"
)

// TestRealTURNServer checks issued credentials against pion's TURN server
// with its TURN REST auth handler, all on loopback: a fresh credential gets
// an allocation that relays traffic; tampered or expired ones are refused.
func TestRealTURNServer(t *testing.T) {
	const secret = "real-server-secret"
	checkNoPionGoroutines(t) // registered first, so it runs after all closes

	quiet := &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}
	serverConn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// pion answers every failed authentication with 400, so the server's
	// own verdicts tell whether a refusal had the expected reason.
	verdicts := new(authLog)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:         "caddy-webrtc.test",
		AuthHandler:   verdicts.wrap(turn.LongTermTURNRESTAuthHandler(secret, quiet.NewLogger("auth"))),
		EventHandler:  turn.EventHandler{OnAuth: verdicts.onAuth},
		LoggerFactory: quiet,
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: serverConn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.IPv4(127, 0, 0, 1),
				Address:      "127.0.0.1",
			},
			// Relay to loopback peers only.
			PermissionHandler: func(_ net.Addr, peer net.IP) bool { return peer.IsLoopback() },
		}},
	})
	if err != nil {
		serverConn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})

	cfg := Config{
		Secrets: []string{secret, "previous-secret"},
		TTL:     caddy.Duration(time.Hour),
		User:    "{http.auth.user.id}",
		URIs:    []string{"turn:" + serverConn.LocalAddr().String()},
	}
	if err := cfg.Provision(provisionCtx(t)); err != nil {
		t.Fatal(err)
	}
	issue := func(now time.Time) Credentials {
		r := httptest.NewRequest("GET", "/", nil)
		return cfg.Issue(r, now)
	}

	tests := []struct {
		name    string
		creds   func() Credentials
		verdict string // the server's last verdict on the username
	}{
		{"fresh credential", func() Credentials { return issue(time.Now()) }, verdictOK},
		{"tampered password", func() Credentials {
			c := issue(time.Now())
			c.Password = Password("wrong-secret", c.Username)
			return c
		}, verdictBadIntegrity},
		{"tampered user part", func() Credentials {
			c := issue(time.Now())
			c.Username += "x"
			return c
		}, verdictBadIntegrity},
		{"expired credential", func() Credentials { return issue(time.Now().Add(-2 * time.Hour)) }, verdictRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds := tt.creds()
			relay, err := allocate(t, quiet, creds)
			if got := verdicts.last(creds.Username); got != tt.verdict {
				t.Errorf("server verdict = %q, want %q", got, tt.verdict)
			}
			if tt.verdict != verdictOK {
				var terr *stun.TurnError
				if !errors.As(err, &terr) || terr.ErrorCodeAttr.Code != stun.CodeBadRequest {
					t.Fatalf("Allocate error = %v, want pion's 400 refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			echoThroughRelay(t, relay)
		})
	}
}

const (
	verdictOK           = "accepted"
	verdictBadIntegrity = "message integrity failed"
	verdictRejected     = "rejected by auth handler" // expired or malformed
)

// authLog records the TURN server's authentication verdicts per username.
type authLog struct {
	mu sync.Mutex
	m  map[string]string
}

func (a *authLog) set(username, verdict string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = make(map[string]string)
	}
	a.m[username] = verdict
}

// last returns the latest verdict. The server records it before it answers,
// so it is in place once the client has its answer.
func (a *authLog) last(username string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[username]
}

func (a *authLog) wrap(h turn.AuthHandler) turn.AuthHandler {
	return func(username, realm string, src net.Addr) ([]byte, bool) {
		key, ok := h(username, realm, src)
		if !ok {
			a.set(username, verdictRejected)
		}
		return key, ok
	}
}

func (a *authLog) onAuth(_, _ net.Addr, _, username, _, _ string, ok bool) {
	if ok {
		a.set(username, verdictOK)
	} else {
		a.set(username, verdictBadIntegrity)
	}
}

// allocate connects a pion TURN client to the server in creds.TURNURIs[0]
// and requests a UDP allocation. Everything is closed at test cleanup.
func allocate(t *testing.T, lf logging.LoggerFactory, creds Credentials) (net.PacketConn, error) {
	t.Helper()
	if len(creds.TURNURIs) != 1 {
		t.Fatalf("TURNURIs = %q", creds.TURNURIs)
	}
	u, err := ParseURI(creds.TURNURIs[0])
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() }) // ends the client's read loop
	client, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: net.JoinHostPort(u.Host, fmt.Sprint(u.Port)),
		Username:       creds.Username,
		Password:       creds.Password,
		Conn:           conn,
		LoggerFactory:  lf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := client.Allocate()
	if err == nil {
		// Deallocates while the client still listens (cleanups run LIFO).
		t.Cleanup(func() { relay.Close() })
	}
	return relay, err
}

// echoThroughRelay sends a datagram from the relay to a loopback peer, which
// answers back through the relay: the allocation really works.
func echoThroughRelay(t *testing.T, relay net.PacketConn) {
	t.Helper()
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	deadline := time.Now().Add(5 * time.Second) // a bound on failure, not a wait
	if err := peer.SetDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	if err := relay.SetDeadline(deadline); err != nil {
		t.Fatal(err)
	}

	if _, err := relay.WriteTo([]byte("ping"), peer.LocalAddr()); err != nil {
		t.Fatalf("relay write: %v", err)
	}
	buf := make([]byte, 64)
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("peer read = %q, %v", buf[:n], err)
	}
	if from.String() != relay.LocalAddr().String() {
		t.Errorf("peer got data from %v, want the relay address %v", from, relay.LocalAddr())
	}
	if _, err := peer.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	n, _, err = relay.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("relay read = %q, %v", buf[:n], err)
	}
}

// checkNoPionGoroutines fails the test if goroutines from pion are still
// running once the test's cleanups are done. Closing a socket ends a read
// loop only after the loop notices, so the check polls until a deadline.
func checkNoPionGoroutines(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			stacks := pionStacks()
			if stacks == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("pion goroutines left running:\n%s", stacks)
				return
			}
			runtime.Gosched()
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func pionStacks() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("github.com/pion/")) {
			leaked = append(leaked, string(g))
		}
	}
	return strings.Join(leaked, "\n\n")
}
