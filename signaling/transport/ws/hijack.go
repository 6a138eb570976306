package ws

import (
	"bufio"
	"net"
	"net/http"
	"sync"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/ws/evloop"
	"github.com/gorilla/websocket"
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
	conn = evloop.WithRawIO(conn)
	// gorilla/websocket reads through brw's reader (see newUpgrader); it
	// refuses one that holds bytes already. Ours reads the connection
	// itself: net/http's reads through its connReader, which keeps
	// net/http's whole connection, its 4 KiB write buffer included, alive.
	if brw.Reader.Buffered() == 0 {
		brw.Reader = bufio.NewReaderSize(conn, gorillaReaderSize)
	}
	return conn, brw, nil
}

// gorillaReaderSize is the size of gorilla's reader, the least it takes:
// a joined peer's bytes are read by a peerReader (peerread.go), and
// gorilla reads only those of a peer refused before joining.
const gorillaReaderSize = 257

// Unwrap lets http.ResponseController see through this wrapper too.
func (h hijackable) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Upgrade upgrades a WebSocket request with the upgrader every handler
// uses. Caddy's ResponseWriter wrappers do not all expose Hijack; it is
// reached through the ResponseController, which follows Unwrap.
func Upgrade(w http.ResponseWriter, r *http.Request) (*websocket.Conn, error) {
	return upgrader.Upgrade(hijackable{w}, r, nil)
}

// upgrader is the WebSocket upgrader every handler uses.
var upgrader = websocket.Upgrader{
	// Origins are checked after the upgrade so that browsers, which
	// cannot read a refused handshake's status, get a forbidden_origin
	// frame.
	CheckOrigin: func(*http.Request) bool { return true },
	// The hijacked connection's reader, which hijackable makes ours.
	ReadBufferSize: 0,
	// Frames are written through a pooled 4 KiB buffer that goes back
	// to the pool after each message, so idle peers hold none.
	WriteBufferSize: 4096,
	WriteBufferPool: writeBufferPool,
}

// writeBufferPool shares write buffers among all connections.
var writeBufferPool websocket.BufferPool = &sync.Pool{}
