package signaling

import (
	"bufio"
	"net"
	"net/http"
)

// hijackable gives gorilla/websocket the http.Hijacker it type-asserts for.
// Since Caddy v2.11.5 the ResponseWriter a handler gets is wrapped in a type
// without a Hijack method; http.ResponseController finds the underlying
// writer's Hijack through the Unwrap chain.
type hijackable struct {
	http.ResponseWriter
}

var _ http.Hijacker = hijackable{}

// Hijack implements http.Hijacker.
func (h hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return withRawIO(conn), brw, nil
}

// Unwrap lets http.ResponseController see through this wrapper too.
func (h hijackable) Unwrap() http.ResponseWriter { return h.ResponseWriter }
