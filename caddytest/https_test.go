package caddytest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// internalCAPool returns the root of Caddy's internal CA, which signs the
// test sites' certificates (skip_install_trust keeps it out of the system).
func internalCAPool(t *testing.T) *x509.CertPool {
	t.Helper()
	var ca struct {
		RootCertificate string `json:"root_certificate"`
	}
	adminJSON(t, "/pki/ca/local", &ca)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca.RootCertificate)) {
		t.Fatal("admin API returned no usable root certificate")
	}
	return pool
}

// TestSignalingOverHTTPS runs a room over wss on a site with automatic
// HTTPS, as browsers use it (HTTP/2 is on for the site; WebSocket upgrades
// still arrive over HTTP/1.1 and must be hijacked through Caddy's wrappers).
func TestSignalingOverHTTPS(t *testing.T) {
	tlsConf := loadHTTPSSite(t)
	d := websocket.Dialer{TLSClientConfig: tlsConf}
	h := http.Header{"Origin": {"https://localhost:9443"}}
	dialTLS := func() *wsClient {
		conn, resp, err := d.Dial("wss://localhost:9443/rtc/ws?room=tls", h)
		if err != nil {
			t.Fatalf("wss dial: %v", err)
		}
		resp.Body.Close()
		c := &wsClient{t: t, conn: conn}
		t.Cleanup(c.leave)
		return c
	}
	a := dialTLS()
	a.id = a.expect("welcome").ID
	b := dialTLS()
	if w := b.expect("welcome"); len(w.Peers) != 1 || w.Peers[0].ID != a.id {
		t.Fatalf("welcome over TLS: %+v", w)
	}
	a.expect("peer-joined")
	b.roundTrip()
}

// A plain GET over HTTP/2 (what browsers use on an HTTPS site) gets the 426
// explanation too, without the Upgrade header a 1.1 answer carries: HTTP/2
// forbids connection-specific headers, and strict clients (curl, nghttp2)
// drop the stream when they see one. Go's client tolerates it, so the test
// checks the header itself.
func TestPlainGetOverHTTP2(t *testing.T) {
	tlsConf := loadHTTPSSite(t)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}}
	resp, err := client.Get("https://localhost:9443/rtc/ws")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusUpgradeRequired || !strings.Contains(string(body), "WebSocket") {
		t.Fatalf("got %s %s %q", resp.Proto, resp.Status, body)
	}
	if v := resp.Header.Get("Upgrade"); v != "" {
		t.Fatalf("HTTP/2 answer carries Upgrade: %q", v)
	}
}

// httpsClient trusts the given roots.
func httpsClient(roots *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
}

// decodeJSON decodes a response body.
func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitForCertificate waits until the HTTPS site completes a handshake:
// Caddy obtains certificates in the background after a load.
func waitForCertificate(t *testing.T, tlsConf *tls.Config) {
	t.Helper()
	eventually(t, 30*time.Second, "the site certificate", func() bool {
		c, err := tls.Dial("tcp", "localhost:9443", tlsConf)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// loadHTTPSSite runs the signaling route on an automatic-HTTPS site and
// returns a TLS config that trusts it, once its certificate is there.
func loadHTTPSSite(t *testing.T) *tls.Config {
	t.Helper()
	loadCaddyfile(t, `
localhost:9443 {
	handle /rtc/* {
		webrtc_signaling
	}
}
`, false)
	tlsConf := &tls.Config{RootCAs: internalCAPool(t), ServerName: "localhost"}
	waitForCertificate(t, tlsConf)
	return tlsConf
}
