package turnapp

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"
	"go.uber.org/zap"
	"golang.org/x/net/http2"
)

// channelData is a ChannelData frame on channel 0x4000 with 4 bytes.
var channelData = []byte{0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4}

func TestClassify(t *testing.T) {
	binding := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	wrongCookie := bytes.Clone(binding)
	wrongCookie[5] ^= 0xff
	for _, c := range []struct {
		name             string
		in               []byte
		isTURN, decided  bool
		decidedFromBytes int // the fewest bytes that decide; 0: as many as given
	}{
		{name: "STUN binding request", in: binding, isTURN: true, decided: true, decidedFromBytes: sniffLen},
		{name: "STUN allocate request", in: stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest)).Raw,
			isTURN: true, decided: true, decidedFromBytes: sniffLen},
		{name: "STUN header without its cookie yet", in: binding[:sniffLen-1]},
		{name: "nothing", in: nil},
		{name: "top bits zero, wrong cookie", in: wrongCookie, decided: true, decidedFromBytes: sniffLen},
		{name: "ChannelData", in: channelData, decided: true, decidedFromBytes: 1},
		{name: "HTTP/1.1 GET", in: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), decided: true, decidedFromBytes: 1},
		{name: "HTTP/1.1 POST", in: []byte("POST /rtc HTTP/1.1\r\n"), decided: true, decidedFromBytes: 1},
		{name: "HTTP/2 preface", in: []byte(http2.ClientPreface), decided: true, decidedFromBytes: 1},
		{name: "TLS record (TLS in TLS)", in: []byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00}, decided: true, decidedFromBytes: sniffLen},
	} {
		t.Run(c.name, func(t *testing.T) {
			isTURN, decided := classify(c.in)
			if isTURN != c.isTURN || decided != c.decided {
				t.Fatalf("classify = turn %v, decided %v; want %v, %v", isTURN, decided, c.isTURN, c.decided)
			}
			if c.decidedFromBytes > 0 {
				if _, d := classify(c.in[:c.decidedFromBytes-1]); d {
					t.Fatalf("decided from %d bytes, want %d", c.decidedFromBytes-1, c.decidedFromBytes)
				}
				if gotTURN, d := classify(c.in[:c.decidedFromBytes]); !d || gotTURN != c.isTURN {
					t.Fatalf("not decided (or differently) from %d bytes", c.decidedFromBytes)
				}
			}
		})
	}
}

// sniff reads as many short reads as it takes, and no further than it
// needs: what follows stays unread for whoever gets the connection.
func TestSniffShortReads(t *testing.T) {
	binding := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	for _, c := range []struct {
		name   string
		in     []byte
		isTURN bool
		head   int
	}{
		{"STUN a byte at a time", binding, true, sniffLen},
		{"HTTP a byte at a time", []byte("GET / HTTP/1.1\r\n"), false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			go func() {
				for i := range c.in {
					if _, err := client.Write(c.in[i : i+1]); err != nil {
						return
					}
				}
			}()
			_ = server.SetReadDeadline(time.Now().Add(waitLimit))
			head, isTURN, err := sniff(server)
			if err != nil || isTURN != c.isTURN || !bytes.Equal(head, c.in[:c.head]) {
				t.Fatalf("sniff = %q, turn %v, %v; want %q, turn %v", head, isTURN, err, c.in[:c.head], c.isTURN)
			}
			// What sniff did not need is still unread.
			rest := make([]byte, len(c.in)-len(head))
			if _, err := io.ReadFull(server, rest); err != nil || !bytes.Equal(append(head, rest...), c.in) {
				t.Fatalf("read %q after sniffing %q, want %q (%v)", rest, head, c.in, err)
			}
		})
	}
	t.Run("silence", func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		go func() { _, _ = client.Write(binding[:5]) }()
		_ = server.SetReadDeadline(time.Now().Add(testIdleTimeout))
		head, _, err := sniff(server)
		if !errors.Is(err, os.ErrDeadlineExceeded) || len(head) != 5 {
			t.Fatalf("sniff of 5 bytes then silence = %q, %v; want the 5 bytes and a deadline error", head, err)
		}
	})
	t.Run("gone", func(t *testing.T) {
		client, server := net.Pipe()
		defer server.Close()
		go func() { _, _ = client.Write(binding[:3]); client.Close() }()
		_ = server.SetReadDeadline(time.Now().Add(waitLimit))
		if _, _, err := sniff(server); !errors.Is(err, io.EOF) {
			t.Fatalf("sniff of a connection closed after 3 bytes: %v, want EOF", err)
		}
	})
}

// testSite is an HTTPS site on loopback (Go's HTTP server) whose listener
// goes through the wrapper to the TURN server ts.
type testSite struct {
	addr      net.Addr
	clientTLS *tls.Config // trusts the site's certificate, offers no ALPN
	app       *App
	srv       *http.Server
}

func startSite(t *testing.T, ts *testServer, w *SiteListener) *testSite {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, clientTLS := selfSigned(t)
	serverTLS.NextProtos = []string{"h2", "http/1.1"}
	app := &App{sites: new(siteListeners)}
	app.sites.srv.Store(ts.server)
	w.app, w.logger = app, zap.NewNop()
	if w.IdleTimeout == 0 {
		w.IdleTimeout = caddy.Duration(DefaultSiteIdleTimeout)
	}
	site := w.WrapListener(tls.NewListener(ln, serverTLS))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s tls=%v", r.Proto, r.TLS != nil)
	})}
	go func() { _ = srv.Serve(site) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &testSite{addr: ln.Addr(), clientTLS: clientTLS, app: app, srv: srv}
}

// get fetches the site's root with a client offering the ALPN protocols.
func (s *testSite) get(t *testing.T, alpn ...string) string {
	t.Helper()
	cfg := s.clientTLS.Clone()
	cfg.NextProtos = alpn
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: len(alpn) > 0 && alpn[0] == "h2"}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: waitLimit}).Get("https://" + s.addr.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// turnOverTLS connects a pion TURN client to the site over TLS, no ALPN,
// as browsers' TURN clients do.
func (s *testSite) turnOverTLS(t *testing.T, username, password string) *turn.Client {
	t.Helper()
	conn, err := tls.Dial("tcp", s.addr.String(), s.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	return turnClientOn(t, turn.NewSTUNConn(conn), s.addr.String(), username, password, clientRTO)
}

// TURN and HTTPS share the site's port: a TURN client over TLS allocates
// and relays, with the TURN server's checks, while HTTP/1.1 (with and
// without ALPN) and HTTP/2 reach the HTTP server.
func TestSiteListenerSharesThePort(t *testing.T) {
	peers, err := newPeerPolicy(nil, []string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, policy{peers: peers, maxPerUser: 1})
	site := startSite(t, ts, &SiteListener{})

	t.Run("TURN allocates and relays", func(t *testing.T) {
		peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		ann, annPass := credential("ann", 0)
		relay, err := site.turnOverTLS(t, ann, annPass).Allocate()
		if err != nil {
			t.Fatal(err)
		}
		defer relay.Close()
		if _, err := relay.WriteTo([]byte("to peer"), peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		_ = peer.SetReadDeadline(time.Now().Add(waitLimit))
		n, from, err := peer.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "to peer" {
			t.Fatalf("peer got %q, %v", buf[:n], err)
		}
		if _, err := peer.WriteTo([]byte("to client"), from); err != nil {
			t.Fatal(err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(waitLimit))
		if n, _, err = relay.ReadFrom(buf); err != nil || string(buf[:n]) != "to client" {
			t.Fatalf("client got %q, %v", buf[:n], err)
		}
		// The TURN server's own checks apply: deny list, quota.
		denied := &net.UDPAddr{IP: net.ParseIP("10.0.0.1"), Port: 9}
		if err := relay.(interface{ CreatePermissions(...net.Addr) error }).CreatePermissions(denied); !isTURNError(err, stun.CodeForbidden) {
			t.Fatalf("permission to 10.0.0.1: %v, want 403", err)
		}
		ann2, ann2Pass := credential("ann", time.Minute)
		if _, err := site.turnOverTLS(t, ann2, ann2Pass).Allocate(); !isTURNError(err, stun.CodeAllocQuotaReached) {
			t.Fatalf("second allocation of ann with a quota of 1: %v, want 486", err)
		}
	})
	t.Run("TURN with a bad credential", func(t *testing.T) {
		username, _ := credential("bob", 0)
		if _, err := site.turnOverTLS(t, username, "wrong").Allocate(); !isTURNError(err, stun.CodeUnauthorized) {
			t.Fatalf("allocation with a bad password: %v, want 401", err)
		}
	})
	for _, c := range []struct {
		name string
		alpn []string
		want string
	}{
		{"HTTP/1.1 without ALPN", nil, "HTTP/1.1 tls=true"},
		{"HTTP/1.1 over ALPN", []string{"http/1.1"}, "HTTP/1.1 tls=true"},
		{"HTTP/2 over ALPN", []string{"h2"}, "HTTP/2.0 tls=true"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := site.get(t, c.alpn...); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	t.Run("turns URI", func(t *testing.T) {
		port := strconv.Itoa(site.addr.(*net.TCPAddr).Port)
		_, uris := site.app.ICEURIs("example.com")
		if want := "turns:example.com:" + port + "?transport=tcp"; len(uris) != 1 || uris[0] != want {
			t.Fatalf("ICEURIs = %q, want [%s]", uris, want)
		}
		_, uris = site.app.ICEURIs("::1")
		if want := "turns:[::1]:" + port + "?transport=tcp"; len(uris) != 1 || uris[0] != want {
			t.Fatalf("ICEURIs = %q, want [%s]", uris, want)
		}
	})
}

func isTURNError(err error, code stun.ErrorCode) bool {
	var te *stun.TurnError
	return errors.As(err, &te) && te.ErrorCodeAttr.Code == code
}

// A client that completes the handshake and then says nothing, or too
// little to tell, is cut after the idle timeout; one that never finishes
// its handshake too. Other clients are served meanwhile.
func TestSiteListenerCutsSilentClients(t *testing.T) {
	ts := startServer(t, policy{})
	site := startSite(t, ts, &SiteListener{IdleTimeout: caddy.Duration(testIdleTimeout)})
	handshaken := func(t *testing.T) *tls.Conn {
		conn := tls.Client(dial(t, site.addr), site.clientTLS)
		if err := conn.Handshake(); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	t.Run("sends nothing", func(t *testing.T) {
		conn := handshaken(t)
		if got := site.get(t); got != "HTTP/1.1 tls=true" {
			t.Fatalf("a site with a silent client open answered %q", got)
		}
		if !closedByServer(conn) {
			t.Fatal("a connection that sent nothing after its handshake is still open")
		}
	})
	t.Run("part of a STUN header", func(t *testing.T) {
		conn := handshaken(t)
		if _, err := conn.Write(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw[:5]); err != nil {
			t.Fatal(err)
		}
		if !closedByServer(conn) {
			t.Fatal("a connection that sent 5 bytes is still open")
		}
	})
	t.Run("no handshake", func(t *testing.T) {
		if !closedByServer(dial(t, site.addr)) {
			t.Fatal("a connection that never started TLS is still open")
		}
	})
}

// Closing the site's listener (a config reload, a shutdown) closes the
// connections it has not sorted yet, without waiting for their timeout.
func TestSiteListenerCloseEndsSorting(t *testing.T) {
	ts := startServer(t, policy{})
	site := startSite(t, ts, &SiteListener{}) // idle timeout 30s, beyond waitLimit
	handshaken := tls.Client(dial(t, site.addr), site.clientTLS)
	if err := handshaken.Handshake(); err != nil {
		t.Fatal(err)
	}
	midHandshake := dial(t, site.addr)
	if got := site.get(t); got != "HTTP/1.1 tls=true" { // both are being sorted by now
		t.Fatalf("got %q", got)
	}
	if err := site.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if !closedByServer(handshaken) || !closedByServer(midHandshake) {
		t.Fatal("connections being sorted outlived their listener")
	}
}

// With no TURN server running (its config being replaced), a TURN
// connection is closed, not left hanging; HTTP is served as before.
func TestSiteListenerWithoutServer(t *testing.T) {
	ts := startServer(t, policy{})
	site := startSite(t, ts, &SiteListener{})
	site.app.sites.srv.Store(nil)
	conn := tls.Client(dial(t, site.addr), site.clientTLS)
	if _, err := conn.Write(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw); err != nil {
		t.Fatal(err)
	}
	if !closedByServer(conn) {
		t.Fatal("a TURN connection with no server to take it is still open")
	}
	if got := site.get(t, "h2"); got != "HTTP/2.0 tls=true" {
		t.Fatalf("got %q", got)
	}
}

// A listener without TLS is left alone: TURNS needs Caddy's handshake
// first, and its port is not announced.
func TestSiteListenerWithoutTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	app := &App{sites: new(siteListeners)}
	w := &SiteListener{app: app, logger: zap.NewNop()}
	if got := w.WrapListener(ln); got != ln {
		t.Fatalf("wrapped a plain listener: %T", got)
	}
	if _, uris := app.ICEURIs("example.com"); len(uris) != 0 {
		t.Fatalf("URIs %q for a listener without TLS", uris)
	}
}

func TestSiteListenerCaddyfile(t *testing.T) {
	for _, c := range []struct {
		input, wantErr string
		want           SiteListener
	}{
		{input: "turn", want: SiteListener{}},
		{input: "turn example.com", want: SiteListener{Hostname: "example.com"}},
		{input: "turn {\n hostname example.com\n idle_timeout 10s\n}", want: SiteListener{Hostname: "example.com", IdleTimeout: caddy.Duration(10 * time.Second)}},
		{input: "turn a b", wantErr: "turn takes 0 to 1 arguments, got 2"},
		{input: "turn {\n colour blue\n}", wantErr: `unknown turn listener wrapper option "colour"`},
		{input: "turn {\n idle_timeout soon\n}", wantErr: `idle_timeout "soon"`},
		{input: "turn {\n hostname a {\n idle_timeout 1s\n }\n}", wantErr: "hostname takes no block"},
	} {
		t.Run(c.input, func(t *testing.T) {
			var w SiteListener
			err := w.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil || w.Hostname != c.want.Hostname || w.IdleTimeout != c.want.IdleTimeout {
				t.Fatalf("parsed %+v, %v; want %+v", w, err, c.want)
			}
		})
	}
	if err := (&SiteListener{IdleTimeout: -1}).Validate(); err == nil {
		t.Fatal("a negative idle_timeout passed Validate")
	}
}
