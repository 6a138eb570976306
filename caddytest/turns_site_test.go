package caddytest

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/quic-go/quic-go/http3"
)

// siteTURNSGlobals serves TURNS on the HTTPS site's own port beside the
// turn app's own listeners: the caddy.listeners.turn wrapper, after TLS.
var siteTURNSGlobals = turnGlobals + fmt.Sprintf(`	servers :%d {
		listener_wrappers {
			turn
		}
	}
`, httpsPort)

// siteTURNS is the URI the wrapper adds for a page loaded from localhost.
var siteTURNS = fmt.Sprintf("turns:localhost:%d?transport=tcp", httpsPort)

// TURN over TLS on the site's port: pion's TURN client allocates and
// relays through 127.0.0.1:9443 with credentials that list that URI by
// themselves, while a WebSocket room on the same port stays up and
// HTTP/1.1, HTTP/2 and HTTP/3 requests keep being answered.
func TestTURNSOnTheSitePort(t *testing.T) {
	loadConfig(t, "text/caddyfile", withGlobals(siteTURNSGlobals, turnSites), false)
	roots := internalCAPool(t)
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	waitForCertificate(t, tlsConf)
	origin := fmt.Sprintf("https://localhost:%d", httpsPort)

	// A signaling peer on the site's port, there before TURN arrives; its
	// welcome lists the site's TURNS URI.
	d := websocket.Dialer{TLSClientConfig: tlsConf}
	wsURL := fmt.Sprintf("wss://localhost:%d/rtc/ws?room=turns443", httpsPort)
	dialWS := func() (*wsClient, frame) {
		conn, resp, err := d.Dial(wsURL, http.Header{"Origin": {origin}})
		if err != nil {
			t.Fatalf("wss dial: %v", err)
		}
		resp.Body.Close()
		c := &wsClient{t: t, conn: conn}
		t.Cleanup(c.leave)
		w := c.expect("welcome")
		c.id = w.ID
		return c, w
	}
	a, welcome := dialWS()
	if len(welcome.ICEServers) != 2 || !slices.Contains(welcome.ICEServers[1].URLs, siteTURNS) {
		t.Fatalf("welcome iceServers without %s: %+v", siteTURNS, welcome.ICEServers)
	}

	// The credentials route lists it after the turn app's own URIs.
	client := httpsClient(roots)
	resp, err := client.Get(origin + "/rtc/credentials?user=ada")
	if err != nil {
		t.Fatal(err)
	}
	var ans iceAnswer
	err = decodeJSON(resp, &ans)
	resp.Body.Close()
	if err != nil || len(ans.ICEServers) != 2 {
		t.Fatalf("credentials: %+v %v", ans, err)
	}
	turnURIs := ans.ICEServers[1].URLs
	if turnURIs[len(turnURIs)-1] != siteTURNS {
		t.Fatalf("credentials list %v, want %s last", turnURIs, siteTURNS)
	}

	// pion's TURN client over TLS to the site's port, no ALPN.
	cred := ans.ICEServers[1]
	c := turnClientAt(t, "tls", fmt.Sprintf("127.0.0.1:%d", httpsPort), cred.Username, cred.Credential, roots)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocating through the site's port: %v", err)
	}
	defer relay.Close()
	relayEcho(t, relay, udpEcho(t))

	// The room still works on the same port: a second peer joins, the
	// first hears of it, and they signal both ways.
	b, _ := dialWS()
	a.expect("peer-joined")
	b.roundTrip()
	a.roundTrip()

	// And plain HTTPS, in every version the site speaks.
	get := func(name string, rt http.RoundTripper, major int) {
		t.Helper()
		resp, err := (&http.Client{Transport: rt}).Get(origin + "/rtc/credentials")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != major {
			t.Fatalf("%s: %s %s", name, resp.Proto, resp.Status)
		}
	}
	// A transport with its own TLS config and no ForceAttemptHTTP2 offers
	// no ALPN: the wrapper looks at its first bytes.
	get("HTTP/1.1 without ALPN", &http.Transport{TLSClientConfig: tlsConf.Clone()}, 1)
	get("HTTP/2", &http.Transport{TLSClientConfig: tlsConf.Clone(), ForceAttemptHTTP2: true}, 2)
	h3 := &http3.Transport{TLSClientConfig: tlsConf.Clone()}
	t.Cleanup(func() { h3.Close() })
	get("HTTP/3", h3, 3)

	// The allocation lived through all of it.
	relayEcho(t, relay, udpEcho(t))
}
