package caddytest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// The fixed ports of these tests lie below Linux's ephemeral range
// (32768-60999): a port in it may be taken at any time as the local port of
// an outgoing connection of a test running in parallel.
const (
	turnPort  = "14790"
	turnsPort = "14791"
	newSecret = "current-secret"
	oldSecret = "previous-secret"
)

// turnGlobals configures the embedded TURN server on loopback. Relaying to
// loopback is denied by default; allow_peers opens only 127.0.0.1 for the
// echo peers here.
const turnGlobals = `	turn {
		realm localhost
		secret ` + newSecret + ` ` + oldSecret + `
		listen udp/127.0.0.1:` + turnPort + ` tcp/127.0.0.1:` + turnPort + `
		tls 127.0.0.1:` + turnsPort + ` localhost
		relay_address 127.0.0.1
		allow_peers 127.0.0.1/32
		max_allocations_per_user 2
	}
`

// turnSites take secret and URIs from the turn app.
const turnSites = `
localhost:9443 {
	handle /rtc/credentials {
		turn_credentials {
			user {http.request.uri.query.user}
		}
	}
	handle /rtc/* {
		webrtc_signaling {
			credentials
		}
	}
}
`

// turnEnv loads the full stack and returns an HTTPS client trusting
// Caddy's internal CA.
func turnEnv(t *testing.T) (*x509.CertPool, func(user string) iceAnswer) {
	t.Helper()
	loadConfig(t, "text/caddyfile", withGlobals(turnGlobals, turnSites), false)
	roots := internalCAPool(t)
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	waitForCertificate(t, tlsConf)
	client := httpsClient(roots)
	fetch := func(user string) iceAnswer {
		t.Helper()
		var ans iceAnswer
		resp, err := client.Get("https://localhost:9443/rtc/credentials?user=" + user)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := decodeJSON(resp, &ans); err != nil || len(ans.ICEServers) != 2 {
			t.Fatalf("credentials: %+v %v", ans, err)
		}
		return ans
	}
	return roots, fetch
}

// udpEcho runs a UDP peer on loopback that sends back what it gets.
func udpEcho(t *testing.T) net.Addr {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return pc.LocalAddr()
}

// turnClient connects a pion TURN client to the embedded server over udp,
// tcp or tls.
func turnClient(t *testing.T, transport, user, pass string, roots *x509.CertPool) *turn.Client {
	t.Helper()
	addr := "127.0.0.1:" + turnPort
	if transport == "tls" {
		addr = "127.0.0.1:" + turnsPort
	}
	return turnClientAt(t, transport, addr, user, pass, roots)
}

// turnClientAt connects a pion TURN client to addr.
func turnClientAt(t *testing.T, transport, addr, user, pass string, roots *x509.CertPool) *turn.Client {
	t.Helper()
	var conn net.PacketConn
	switch transport {
	case "udp":
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = pc
	case "tcp":
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	case "tls":
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("TURNS handshake with Caddy's certificate: %v", err)
		}
		conn = turn.NewSTUNConn(c)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr,
		TURNServerAddr: addr,
		Conn:           conn,
		Username:       user,
		Password:       pass,
		Realm:          "localhost",
		RTO:            200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

// relayEcho sends a message through the relay to the echo peer and reads
// the answer back.
func relayEcho(t *testing.T, relay net.PacketConn, peer net.Addr) {
	t.Helper()
	msg := []byte("through the relay")
	if _, err := relay.WriteTo(msg, peer); err != nil {
		t.Fatalf("relaying to %s: %v", peer, err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := relay.ReadFrom(buf)
	if err != nil || string(buf[:n]) != string(msg) || from.String() != peer.String() {
		t.Fatalf("echo through relay: %q from %v, %v", buf[:n], from, err)
	}
}

func TestTURNAllocatesOverUDPTCPAndTLS(t *testing.T) {
	roots, fetch := turnEnv(t)
	ans := fetch("alice")
	wantSTUN := []string{"stun:127.0.0.1:" + turnPort}
	wantTURN := []string{"turn:127.0.0.1:" + turnPort + "?transport=udp", "turn:127.0.0.1:" + turnPort + "?transport=tcp", "turns:localhost:" + turnsPort + "?transport=tcp"}
	if fmt.Sprint(ans.ICEServers[0].URLs) != fmt.Sprint(wantSTUN) || fmt.Sprint(ans.ICEServers[1].URLs) != fmt.Sprint(wantTURN) {
		t.Fatalf("URIs derived from the turn app: %v %v", ans.ICEServers[0].URLs, ans.ICEServers[1].URLs)
	}
	cred := ans.ICEServers[1]
	echo := udpEcho(t)
	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			c := turnClient(t, transport, cred.Username, cred.Credential, roots)
			mapped, err := c.SendBindingRequest()
			if err != nil || !strings.HasPrefix(mapped.String(), "127.0.0.1:") {
				t.Fatalf("STUN binding: %v %v", mapped, err)
			}
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			defer relay.Close()
			if !strings.HasPrefix(relay.LocalAddr().String(), "127.0.0.1:") {
				t.Fatalf("relay address %s", relay.LocalAddr())
			}
			relayEcho(t, relay, echo)
		})
	}
}

func TestTURNRefusesBadCredentials(t *testing.T) {
	roots, fetch := turnEnv(t)
	cred := fetch("bob").ICEServers[1]
	tampered := []byte(cred.Credential)
	tampered[3] ^= 1
	expired := turncreds.Username(time.Now().Add(-time.Second), "bob")
	fresh := turncreds.Username(time.Now().Add(time.Hour), "bob")
	tests := []struct {
		name, user, pass string
		ok               bool
	}{
		{"issued", cred.Username, cred.Credential, true},
		{"old secret still listed", fresh, turncreds.Password(oldSecret, fresh), true},
		{"tampered password", cred.Username, string(tampered), false},
		{"tampered user", strings.Replace(cred.Username, "bob", "eve", 1), cred.Credential, false},
		{"expired", expired, turncreds.Password(newSecret, expired), false},
		{"unknown secret", fresh, turncreds.Password("retired-secret", fresh), false},
		{"not TURN REST", "bob", turncreds.Password(newSecret, "bob"), false},
	}
	for _, tc := range tests {
		for _, transport := range []string{"udp", "tcp"} { // datagram and stream filtering
			t.Run(tc.name+"/"+transport, func(t *testing.T) {
				c := turnClient(t, transport, tc.user, tc.pass, roots)
				relay, err := c.Allocate()
				if tc.ok && err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !tc.ok && err == nil {
					relay.Close()
					t.Fatal("allocated")
				}
				if !tc.ok && !strings.Contains(err.Error(), "401") {
					t.Fatalf("refused with %v, want 401 Unauthorized", err)
				}
				if err == nil {
					relay.Close()
				}
			})
		}
	}
}

// errorCode is the STUN error code in err, 0 if it carries none.
func errorCode(err error) stun.ErrorCode {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return te.ErrorCodeAttr.Code
	}
	return 0
}

// peerAttr is an XOR-PEER-ADDRESS attribute.
type peerAttr net.UDPAddr

func (p peerAttr) AddTo(m *stun.Message) error {
	return (&stun.XORMappedAddress{IP: p.IP, Port: p.Port}).AddToAs(m, stun.AttrXORPeerAddress)
}

// channelBind sends a ChannelBind request for peer on c's allocation, as
// a client does (first unauthenticated, for the nonce), and returns the
// answer's error code, 0 for success. pion's client binds channels in the
// background and drops the error code, so the request is built here.
func channelBind(t *testing.T, c *turn.Client, number uint16, peer *net.UDPAddr, user, pass string) stun.ErrorCode {
	t.Helper()
	setters := []stun.Setter{
		stun.TransactionID, stun.NewType(stun.MethodChannelBind, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{byte(number >> 8), byte(number), 0, 0}},
		peerAttr(*peer),
	}
	res, err := c.PerformTransaction(stun.MustBuild(setters...), c.TURNServerAddr(), false)
	var nonce stun.Nonce
	if err != nil || nonce.GetFrom(res.Msg) != nil {
		t.Fatalf("no nonce for ChannelBind: %v", err)
	}
	setters[0] = stun.TransactionID
	setters = append(setters, stun.NewUsername(user), stun.NewRealm("localhost"), nonce,
		stun.NewLongTermIntegrity(user, "localhost", pass), stun.Fingerprint)
	if res, err = c.PerformTransaction(stun.MustBuild(setters...), c.TURNServerAddr(), false); err != nil {
		t.Fatalf("ChannelBind: %v", err)
	}
	var code stun.ErrorCodeAttribute
	if code.GetFrom(res.Msg) != nil {
		if res.Msg.Type.Class == stun.ClassErrorResponse {
			return -1 // an error without ERROR-CODE
		}
		return 0
	}
	return code.Code
}

// Requests to relay to a denied peer get 403 Forbidden (RFC 8656 9.2,
// 11.2), over datagrams and streams alike.
func TestTURNRefusesDeniedPeers(t *testing.T) {
	roots, fetch := turnEnv(t)
	cred := fetch("carol").ICEServers[1]
	denied := []string{
		"127.0.0.2", "127.1.2.3", // loopback beyond the allowed 127.0.0.1
		"10.0.0.1", "172.16.0.1", "192.168.1.1", // RFC 1918
		"169.254.169.254", "100.64.0.1", "224.0.0.1", "255.255.255.255", "0.0.0.0",
		"192.0.2.1", "168.63.129.16",
	}
	allowed := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9}
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			c := turnClient(t, transport, cred.Username, cred.Credential, roots)
			relay, err := c.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()
			// CreatePermission asks the server without sending any data, so a
			// wrongly granted permission would still relay nothing anywhere.
			for i, ip := range denied {
				peer := &net.UDPAddr{IP: net.ParseIP(ip), Port: 9}
				if err := c.CreatePermission(peer); errorCode(err) != stun.CodeForbidden {
					t.Errorf("CreatePermission to %s: %v, want 403 Forbidden", ip, err)
				}
				if code := channelBind(t, c, 0x4000+uint16(i), peer, cred.Username, cred.Credential); code != stun.CodeForbidden {
					t.Errorf("ChannelBind to %s: error code %d, want 403 Forbidden", ip, code)
				}
			}
			// Sending asks for the permission first, and fails the same way.
			if _, err := relay.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP("10.0.0.1"), Port: 9}); errorCode(err) != stun.CodeForbidden {
				t.Errorf("relaying to 10.0.0.1: %v, want 403 Forbidden", err)
			}
			if err := c.CreatePermission(allowed); err != nil {
				t.Errorf("permission to the allowed 127.0.0.1 refused: %v", err)
			}
			if code := channelBind(t, c, 0x4FFF, allowed, cred.Username, cred.Credential); code != 0 {
				t.Errorf("ChannelBind to the allowed 127.0.0.1: error code %d", code)
			}
		})
	}
}

func TestTURNQuotaPerUser(t *testing.T) {
	roots, fetch := turnEnv(t)
	cred := fetch("dave").ICEServers[1]
	for i := range 3 {
		c := turnClient(t, "udp", cred.Username, cred.Credential, roots)
		relay, err := c.Allocate()
		if i < 2 && err != nil {
			t.Fatalf("allocation %d refused: %v", i+1, err)
		}
		if i == 2 {
			if err == nil {
				t.Fatal("third allocation granted with max_allocations_per_user 2")
			}
			break
		}
		defer relay.Close()
	}
	// Another user is not affected.
	other := fetch("erin").ICEServers[1]
	if relay, err := turnClient(t, "udp", other.Username, other.Credential, roots).Allocate(); err != nil {
		t.Fatalf("other user refused: %v", err)
	} else {
		relay.Close()
	}
}

func TestTURNAllocationSurvivesReload(t *testing.T) {
	roots, fetch := turnEnv(t)
	cred := fetch("frank").ICEServers[1]
	relay, err := turnClient(t, "udp", cred.Username, cred.Credential, roots).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	echo := udpEcho(t)
	relayEcho(t, relay, echo)
	// Same listeners, other policy: the server and its allocations stay.
	loadConfig(t, "text/caddyfile", withGlobals(strings.Replace(turnGlobals, "max_allocations_per_user 2", "max_allocations_per_user 3", 1), turnSites), false)
	relayEcho(t, relay, echo)
}

func TestTURNMaxLifetimeStopsRefreshes(t *testing.T) {
	roots, _ := turnEnv(t)
	loadConfig(t, "text/caddyfile", withGlobals(strings.Replace(turnGlobals, "max_allocations_per_user 2", "max_allocations_per_user 2\n\t\tmax_lifetime 1s", 1), turnSites), false)
	user := turncreds.Username(time.Now().Add(time.Hour), "grace")
	relay, err := turnClient(t, "udp", user, turncreds.Password(newSecret, user), roots).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	perm := relay.(interface{ CreatePermissions(...net.Addr) error })
	peer := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9}
	if err := perm.CreatePermissions(peer); err != nil {
		t.Fatalf("young allocation refused: %v", err)
	}
	// Once older than max_lifetime, nothing extends it any more.
	eventually(t, 10*time.Second, "requests on an allocation past max_lifetime to be refused", func() bool {
		return perm.CreatePermissions(peer) != nil
	})
}

// A reload that changes what needs a new server (here the realm) binds the
// same addresses again while the old server still holds them.
func TestTURNReloadWithNewRealmRebinds(t *testing.T) {
	roots, _ := turnEnv(t)
	loadConfig(t, "text/caddyfile", withGlobals(strings.Replace(turnGlobals, "realm localhost", "realm other.test", 1), turnSites), false)
	user := turncreds.Username(time.Now().Add(time.Hour), "henry")
	relay, err := turnClient(t, "udp", user, turncreds.Password(newSecret, user), roots).Allocate()
	if err != nil {
		t.Fatalf("allocation after the rebinding reload: %v", err)
	}
	relayEcho(t, relay, udpEcho(t))
	relay.Close()
}

// When a reload replaces the server, its TCP clients are disconnected
// rather than left to a server that no longer exists.
func TestTURNReplacedServerClosesStreams(t *testing.T) {
	turnEnv(t)
	conn, err := net.Dial("tcp", "127.0.0.1:"+turnPort)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	if _, err := conn.Write(req.Raw); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	if n, err := conn.Read(buf); err != nil || !stun.IsMessage(buf[:n]) {
		t.Fatalf("binding over TCP: %d bytes, %v", n, err)
	}
	loadConfig(t, "text/caddyfile", withGlobals(strings.Replace(turnGlobals, "realm localhost", "realm replaced.test", 1), turnSites), false)
	if _, err := conn.Read(buf); err == nil {
		t.Fatal("connection to the replaced server still open")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection to the replaced server still open after 10s")
	}
}
