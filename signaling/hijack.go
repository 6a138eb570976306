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
	conn = withRawIO(conn)
	// gorilla/websocket reads through brw's reader (see newUpgrader); it
	// refuses one that holds bytes already. Ours reads the connection
	// itself: net/http's reads through its connReader, which keeps
	// net/http's whole connection, its 4 KiB write buffer included, alive.
	if brw.Reader.Buffered() == 0 {
		brw.Reader = bufio.NewReaderSize(conn, readerSize(conn))
	}
	return conn, brw, nil
}

// readerSize is the size of gorilla's reader on conn: 1 KiB takes several
// small frames per read, and larger payloads bypass it into the read
// buffer. The event loop reads plain TCP connections itself, and gorilla
// only those refused before joining: the least size gorilla takes.
func readerSize(conn net.Conn) int {
	if _, raw := conn.(rawWriter); raw {
		return 257
	}
	return 1024
}

// Unwrap lets http.ResponseController see through this wrapper too.
func (h hijackable) Unwrap() http.ResponseWriter { return h.ResponseWriter }
