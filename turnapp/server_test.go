package turnapp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	zapobserver "go.uber.org/zap/zaptest/observer"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

const (
	testSecret = "test-secret"
	testRealm  = "test.realm"
	// waitLimit bounds every wait for something the server should do.
	waitLimit = 10 * time.Second
)

// testServer is a real server (pion/turn behind the app's listeners) on
// loopback ports the kernel picks, logging to an observer.
type testServer struct {
	*server
	logs          *zapobserver.ObservedLogs
	udp, tcp, tls net.Addr
	clientTLS     *tls.Config // trusts the server's certificate
}

// startServer runs a server with pol's settings on UDP, TCP and TLS (a
// self-signed certificate), relaying on loopback.
func startServer(t *testing.T, pol policy) *testServer {
	t.Helper()
	core, logs := zapobserver.New(zapcore.DebugLevel)
	pol.logger = zap.New(core)
	if pol.secrets == nil {
		pol.secrets = []string{testSecret}
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	b := binding{
		Realm:     testRealm,
		Listeners: []listenerSpec{{"udp", "127.0.0.1:0"}, {"tcp", "127.0.0.1:0"}, {"tls", "127.0.0.1:0"}},
		RelayIP:   "127.0.0.1",
		PublicIP:  "127.0.0.1",
	}
	s := &server{}
	s.pol.Store(&pol)
	serverTLS, clientTLS := selfSigned(t)
	s.tlsConf.Store(serverTLS)
	if err := s.listen(ctx, &b, testRealm); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Destruct() })
	return &testServer{server: s, logs: logs, udp: s.addrs[0], tcp: s.addrs[1], tls: s.addrs[2], clientTLS: clientTLS}
}

// selfSigned returns a server TLS config with a fresh self-signed
// certificate for 127.0.0.1, and a client config that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: testRealm},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
}

// credential is a valid TURN REST username for user ("" for none: the
// username is then the bare expiry) and its password under testSecret.
func credential(user string, expiryOffset time.Duration) (username, password string) {
	username = turncreds.Username(time.Now().Add(time.Hour+expiryOffset), user)
	return username, turncreds.Password(testSecret, username)
}

// clientRTO is the retransmission timeout of test clients: short, so
// tests that expect no answer end soon.
const clientRTO = 200 * time.Millisecond

// turnClient connects a pion TURN client over "udp" or "tcp" to addr.
func turnClient(t *testing.T, network string, addr net.Addr, username, password string) *turn.Client {
	t.Helper()
	return turnClientRTO(t, network, addr, username, password, clientRTO)
}

// turnClientRTO is turnClient with the retransmission timeout rto.
func turnClientRTO(t *testing.T, network string, addr net.Addr, username, password string, rto time.Duration) *turn.Client {
	t.Helper()
	var conn net.PacketConn
	switch network {
	case "udp":
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = pc
	case "tcp":
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	}
	return turnClientOn(t, conn, addr.String(), username, password, rto)
}

// turnClientOn starts a pion TURN client on conn, for the server at addr.
func turnClientOn(t *testing.T, conn net.PacketConn, addr, username, password string, rto time.Duration) *turn.Client {
	t.Helper()
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr,
		TURNServerAddr: addr,
		Conn:           conn,
		Username:       username,
		Password:       password,
		Realm:          testRealm,
		RTO:            rto,
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

// eventually polls cond until it holds, failing the test after waitLimit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// shorten sets *v to d for the rest of the test.
func shorten(t *testing.T, v *time.Duration, d time.Duration) {
	old := *v
	*v = d
	t.Cleanup(func() { *v = old })
}

// stringField returns the string field key of e, or "" without one.
func stringField(e zapobserver.LoggedEntry, key string) string {
	s, _ := e.ContextMap()[key].(string)
	return s
}

// badAllocate is an Allocate request signed with a secret the server does
// not know.
func badAllocate(t *testing.T) []byte {
	t.Helper()
	username := turncreds.Username(time.Now().Add(time.Hour), "mallory")
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.NewUsername(username), stun.NewRealm(testRealm), stun.NewNonce("n"),
		stun.NewLongTermIntegrity(username, testRealm, turncreds.Password("unknown-secret", username)))
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// roundTrip sends req from pc to the server and returns the error code of
// the answer (0 for a success response).
func roundTrip(t *testing.T, pc net.PacketConn, server net.Addr, req []byte) stun.ErrorCode {
	t.Helper()
	if _, err := pc.WriteTo(req, server); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(waitLimit))
	buf := make([]byte, 1500)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	m := &stun.Message{Raw: buf[:n]}
	if err := m.Decode(); err != nil {
		t.Fatal(err)
	}
	var code stun.ErrorCodeAttribute
	if code.GetFrom(m) != nil {
		return 0
	}
	return code.Code
}

// dialTLS completes a TLS handshake with the server's TLS listener.
func (ts *testServer) dialTLS(t *testing.T) *tls.Conn {
	t.Helper()
	conn := tls.Client(dial(t, ts.tls), ts.clientTLS)
	if err := conn.Handshake(); err != nil {
		t.Fatal(err)
	}
	return conn
}

func dial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
