//go:build linux

package caddytest

import (
	"fmt"
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyproc"
	"github.com/caddy-webrtc/caddy-webrtc/internal/natstest"
)

// natsSite is the demo site on port with the nats backend of the NATS at
// natsURL, as each of several servers behind a load balancer would serve
// it. Pages load it over http://localhost, a secure context.
func natsSite(t *testing.T, natsURL string) func(port int) string {
	return func(port int) string {
		return fmt.Sprintf(`http://localhost:%d {
	handle /rtc/* {
		webrtc_signaling {
			backend nats {
				url %s
				prefix browser
			}
		}
	}
	handle {
		root * %s
		file_server
	}
}
`, port, natsURL, demoRoot(t))
	}
}

// sixPagesOverTwoServers: three pages load the demo from one Caddy
// process and three from another, both on the nats backend of one
// embedded NATS (issue 10); they form one full mesh, media and data
// crossing between pages of different servers.
func sixPagesOverTwoServers(t *testing.T, b *chromium) {
	nats := natstest.Run(t)
	var origins []string
	for range 2 {
		p := caddyproc.Start(t, natsSite(t, nats.URL()))
		origins = append(origins, fmt.Sprintf("http://localhost:%d", p.Port))
	}
	urls := make([]string, pages)
	for i := range urls {
		urls[i] = demoURLAt(origins[i%2], "nats", nil)
	}
	ps := openPages(t, b, urls)
	fullMesh(t, ps)
}
