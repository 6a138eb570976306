package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/signaling"
)

// Timeouts of one peer's network operations, so a stuck server ends a run
// instead of hanging it.
const (
	handshakeTimeout = 10 * time.Second
	writeTimeout     = 10 * time.Second
	closeTimeout     = time.Second
)

// Failure codes of peers that never joined, next to the server's own error
// codes (room_full, rate_limited, ...).
const (
	codeDialError = "dial_error"
	codeHandshake = "handshake_error"
)

// room is a group of peers that signal one another.
type room struct {
	name    string
	members []*peer // by slot
}

// peer is one signaling client.
type peer struct {
	index int // in the run
	slot  int // in its room
	room  *room
	conn  *websocket.Conn
	wmu   sync.Mutex // one writer at a time: sender, heartbeat, close
	// id is the peer's id while it is connected, nil otherwise. Senders
	// only address room-mates that have one.
	id atomic.Pointer[string]
	// The sender goroutine's state: the last sequence number sent to each
	// slot, and the round-robin position.
	seqTo []uint64
	next  int
	// lastSeq is the seq of the last server frame read (caddy protocol),
	// which the sender acknowledges.
	lastSeq atomic.Uint64
	// recv is the reader goroutine's state, keyed by sender index.
	recv map[int]*seqTracker
	// The sender's buffers: a payload being built, and the signals of
	// one write.
	scratch []byte
	out     frameBatch
	wbuf    []byte // masked frames being written, under wmu
	// inflight and wake pace a FlatOut sender: receivers decrement and
	// wake it.
	inflight atomic.Int64
	wake     chan struct{}
	done     chan struct{} // closed when the reader ends
}

// payload is what every signal carries besides padding: the sender's
// index, its sequence number to this receiver and the send time (ns since
// the run's start, on the monotonic clock, which sender and receiver share).
type payload struct {
	From int    `json:"f"`
	Seq  uint64 `json:"s"`
	Sent int64  `json:"t"`
}

// connect dials peer p, waits for the join answer, and starts its reader.
func (r *run) connect(ctx context.Context, p *peer) {
	start := time.Now()
	conn, id, code, err := r.join(ctx, p)
	if err != nil {
		r.fail(code, err)
		return
	}
	r.joinHist.Record(time.Since(start))
	p.conn = conn
	p.id.Store(&id)
	r.connected.Add(1)
	go r.read(p)
}

// join dials and reads frames until the server admits or refuses the peer.
func (r *run) join(ctx context.Context, p *peer) (*websocket.Conn, string, string, error) {
	preID := r.cfg.RoomPrefix + "-" + strconv.Itoa(p.index)
	token, err := r.token(p)
	if err != nil {
		return nil, "", "token_error", err
	}
	conn, resp, err := r.dialer.DialContext(ctx, r.proto.dialURL(r.base, p.room.name, preID, token), nil)
	if err != nil {
		if resp != nil {
			return nil, "", "http_" + strconv.Itoa(resp.StatusCode), fmt.Errorf("upgrade refused: %s", resp.Status)
		}
		return nil, "", codeDialError, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			conn.Close()
			return nil, "", codeHandshake, err
		}
		f, err := r.proto.parse(b)
		switch {
		case err != nil:
			conn.Close()
			return nil, "", codeHandshake, err
		case f.kind == kindError:
			conn.Close()
			return nil, "", f.code, fmt.Errorf("server refused the peer: %s", f.code)
		case f.kind == kindJoined:
			_ = conn.SetReadDeadline(time.Time{})
			if r.proto.assignsIDs() {
				f.id = preID
			}
			return conn, f.id, "", nil
		}
	}
}

// token mints the peer's room token, if the run has a secret.
func (r *run) token(p *peer) (string, error) {
	if len(r.cfg.TokenSecret) == 0 {
		return "", nil
	}
	ttl := r.cfg.Duration + time.Duration(float64(r.cfg.Peers)/r.cfg.Ramp*float64(time.Second)) + tokenTTLMargin
	return signaling.MintToken(r.cfg.TokenSecret, p.room.name, strconv.Itoa(p.index), "", ttl, time.Now())
}

// read handles the peer's frames until its connection ends.
func (r *run) read(p *peer) {
	defer close(p.done)
	defer p.id.Store(nil)
	var buf []byte // reused: frames are handled before the next is read
	for {
		_, rd, err := p.conn.NextReader()
		if err == nil {
			buf, err = readAll(rd, buf[:0])
		}
		if err != nil {
			if !r.closing.Load() {
				r.dropped.Add(1)
			}
			return
		}
		if seq, ok := serverSeq(buf); ok {
			p.lastSeq.Store(seq)
		}
		if data, ok := r.proto.quick(buf); ok {
			r.receive(p, data)
			continue
		}
		f, err := r.proto.parse(buf)
		switch {
		case err != nil:
			r.count(&r.serverErrors, "unparsable_frame")
		case f.kind == kindError:
			r.count(&r.serverErrors, f.code)
		case f.kind == kindSignal:
			r.receive(p, f.data)
		}
	}
}

// readAll appends what rd holds to b.
func readAll(rd io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// receive checks one signal's sequence and latency.
func (r *run) receive(p *peer, data []byte) {
	pl, ok := parsePayload(data)
	if !ok && json.Unmarshal(data, &pl) != nil {
		pl.From = -1
	}
	if pl.From < 0 || pl.From >= len(r.peers) {
		r.count(&r.serverErrors, "foreign_signal")
		return
	}
	r.relayHist.Record(time.Since(r.start) - time.Duration(pl.Sent))
	t := p.recv[pl.From]
	if t == nil {
		t = new(seqTracker)
		p.recv[pl.From] = t
	}
	switch t.observe(pl.Seq) {
	case seqInOrder:
		r.delivered.Add(1)
	case seqLate:
		r.delivered.Add(1)
		r.misordered.Add(1)
	case seqDuplicate:
		r.duplicated.Add(1)
	}
	if r.cfg.FlatOut {
		s := r.peers[pl.From]
		s.inflight.Add(-1)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// write sends msgs as text frames in one write to the connection; frames
// of one peer never interleave. gorilla's own writes (pongs, the close
// frame) are single writes too, so they land between whole frames.
func (p *peer) write(msgs ...[]byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.wbuf = p.wbuf[:0]
	for _, m := range msgs {
		p.wbuf = appendClientText(p.wbuf, m)
	}
	conn := p.conn.UnderlyingConn()
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := conn.Write(p.wbuf)
	return err
}

// frameBatch holds a sender's frames back to back until they go out.
type frameBatch struct {
	buf  []byte
	ends []int
	list [][]byte
}

func (f *frameBatch) reset() { f.buf, f.ends = f.buf[:0], f.ends[:0] }

// next is what the next frame is appended to; add records the result.
func (f *frameBatch) next() []byte { return f.buf }
func (f *frameBatch) add(b []byte) { f.buf, f.ends = b, append(f.ends, len(b)) }

// frames are the frames added since reset.
func (f *frameBatch) frames() [][]byte {
	f.list = f.list[:0]
	start := 0
	for _, end := range f.ends {
		f.list = append(f.list, f.buf[start:end])
		start = end
	}
	return f.list
}

// close says goodbye with a close frame and drops the connection.
func (p *peer) close() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = p.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeTimeout))
	p.conn.Close()
}

// isTooMany tells whether a failure code is HTTP 429.
func isTooMany(code string) bool {
	return code == "http_"+strconv.Itoa(http.StatusTooManyRequests)
}

var errNoRoomMate = errors.New("no connected room-mate")
