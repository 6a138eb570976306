// Command barerelay serves protocol v1 of webrtc_signaling with nothing
// but gorilla/websocket: the baseline of bench/compare.sh.
//
//	go run ./bench/barerelay -addr 127.0.0.1:9100
//
// Peers connect to ws://127.0.0.1:9100/<any path>?room=<name>.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/bench/barerelay/relay"
)

// readHeaderTimeout keeps a stuck client from holding a connection before
// the upgrade, as Caddy's default does.
const readHeaderTimeout = time.Minute

func main() {
	addr := flag.String("addr", "127.0.0.1:9100", "listen address")
	flag.Parse()
	srv := &http.Server{Addr: *addr, Handler: relay.New(), ReadHeaderTimeout: readHeaderTimeout}
	log.Printf("barerelay listening on %s", *addr)
	log.Fatal(srv.ListenAndServe())
}
