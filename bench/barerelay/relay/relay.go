// Package relay is a bare gorilla/websocket implementation of protocol v1
// of webrtc_signaling (welcome, peer-joined, peer-left, signal, broadcast,
// ping/pong), with a reader and a writer goroutine per connection and
// nothing else: no limits, tokens, origins or metrics. It is the baseline
// the module's overhead is measured against; see BENCHMARKS.md.
package relay

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
)

// Sizes of the relay's buffers.
const (
	// queueLen is each peer's outbound queue, as in the module: a sender
	// waits when its addressee's queue is full, so a flood is paced.
	queueLen = 256
	// maxMessage bounds a frame, as the module's default does.
	maxMessage = 64 << 10
	bufferSize = 4096
	idBytes    = 16
)

// Relay is an http.Handler serving signaling rooms named by the room query
// parameter.
type Relay struct {
	upgrader websocket.Upgrader
	mu       sync.Mutex
	rooms    map[string]*room
}

type room struct {
	peers []*peer // join order
}

type peer struct {
	id   string
	out  chan []byte
	done chan struct{} // closed when the peer leaves
}

// New returns an empty relay.
func New() *Relay {
	return &Relay{
		upgrader: websocket.Upgrader{
			ReadBufferSize:  bufferSize,
			WriteBufferSize: bufferSize,
			// A baseline for load tests from non-browser clients.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		rooms: map[string]*room{},
	}
}

// inbound is a frame from a peer.
type inbound struct {
	Type string          `json:"type"`
	To   string          `json:"to"`
	Data json.RawMessage `json:"data"`
}

// outbound is a frame to a peer.
type outbound struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	From string          `json:"from,omitempty"`
	Code string          `json:"code,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

type welcome struct {
	Type  string     `json:"type"`
	ID    string     `json:"id"`
	Room  string     `json:"room"`
	Peers []peerInfo `json:"peers"`
}

type peerInfo struct {
	ID string `json:"id"`
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("relay: encoding a frame: " + err.Error())
	}
	return b
}

func (rl *Relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("room")
	if name == "" {
		http.Error(w, "missing room", http.StatusBadRequest)
		return
	}
	conn, err := rl.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	conn.SetReadLimit(maxMessage)
	p := &peer{id: newID(), out: make(chan []byte, queueLen), done: make(chan struct{})}
	rl.join(name, p)
	go write(conn, p)
	rl.read(conn, name, p)
	rl.leave(name, p)
	conn.Close()
}

// join seats p, sends its welcome and tells the others.
func (rl *Relay) join(name string, p *peer) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rm := rl.rooms[name]
	if rm == nil {
		rm = &room{}
		rl.rooms[name] = rm
	}
	w := welcome{Type: "welcome", ID: p.id, Room: name, Peers: []peerInfo{}}
	joined := encode(outbound{Type: "peer-joined", ID: p.id})
	for _, o := range rm.peers {
		w.Peers = append(w.Peers, peerInfo{ID: o.id})
		o.send(joined)
	}
	p.out <- encode(w) // the queue is empty: never blocks
	rm.peers = append(rm.peers, p)
}

// leave removes p and tells the others.
func (rl *Relay) leave(name string, p *peer) {
	close(p.done)
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rm := rl.rooms[name]
	left := encode(outbound{Type: "peer-left", ID: p.id})
	kept := rm.peers[:0]
	for _, o := range rm.peers {
		if o != p {
			kept = append(kept, o)
			o.send(left)
		}
	}
	rm.peers = kept
	if len(kept) == 0 {
		delete(rl.rooms, name)
	}
}

// find returns the member of room name with id, or nil.
func (rl *Relay) find(name, id string) *peer {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rm := rl.rooms[name]; rm != nil {
		for _, o := range rm.peers {
			if o.id == id {
				return o
			}
		}
	}
	return nil
}

// others returns the members of room name other than p.
func (rl *Relay) others(name string, p *peer) []*peer {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	var out []*peer
	for _, o := range rl.rooms[name].peers {
		if o != p {
			out = append(out, o)
		}
	}
	return out
}

// read handles p's frames until its connection ends.
func (rl *Relay) read(conn *websocket.Conn, name string, p *peer) {
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var in inbound
		if json.Unmarshal(b, &in) != nil {
			p.send(errFrame("bad_message"))
			continue
		}
		rl.handle(name, p, in)
	}
}

// handle acts on one well-formed frame.
func (rl *Relay) handle(name string, p *peer, in inbound) {
	switch {
	case in.Type == "ping":
		p.send(pong)
	case in.Type == "signal" && in.To != "" && in.Data != nil:
		if to := rl.find(name, in.To); to != nil {
			to.send(encode(outbound{Type: "signal", From: p.id, Data: in.Data}))
		} else {
			p.send(errFrame("unknown_peer"))
		}
	case in.Type == "broadcast" && in.Data != nil:
		f := encode(outbound{Type: "broadcast", From: p.id, Data: in.Data})
		for _, o := range rl.others(name, p) {
			o.send(f)
		}
	default:
		p.send(errFrame("bad_message"))
	}
}

var pong = encode(outbound{Type: "pong"})

func errFrame(code string) []byte {
	return encode(outbound{Type: "error", Code: code})
}

// send queues a frame for p, waiting while its queue is full, unless p
// has left.
func (p *peer) send(b []byte) {
	select {
	case p.out <- b:
	case <-p.done:
	}
}

// write sends p's queued frames until p leaves.
func write(conn *websocket.Conn, p *peer) {
	for {
		select {
		case b := <-p.out:
			if conn.WriteMessage(websocket.TextMessage, b) != nil {
				conn.Close() // ends the reader, which leaves
				return
			}
		case <-p.done:
			return
		}
	}
}

func newID() string {
	b := make([]byte, idBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
