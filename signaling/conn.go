package signaling

import (
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// sendQueueSize bounds the frames waiting for one peer; a peer that lets
	// it fill up is disconnected rather than stalling its room.
	sendQueueSize = 256
	// stallTimeout is how long a sender waits for room in a full queue
	// before the reader counts as not reading.
	stallTimeout = 5 * time.Second
	// writeWait bounds one frame write to a peer.
	writeWait = 10 * time.Second
	// closeGrace is how long the server waits for the peer's close frame
	// after sending its own, so the peer gets to read what came before it.
	closeGrace = 2 * time.Second
)

// wsPeer is a Peer on a WebSocket connection. One goroutine (the writer)
// does all writes; the request goroutine does all reads.
type wsPeer struct {
	id      string
	ws      *websocket.Conn
	queue   chan []byte
	metrics *hubMetrics

	closeOnce   sync.Once
	done        chan struct{} // closed when the peer starts disconnecting
	closeCode   int
	closeReason string
	flush       bool // whether queued frames go out before the close frame
}

var _ Peer = (*wsPeer)(nil)

func newWSPeer(id string, ws *websocket.Conn, metrics *hubMetrics) *wsPeer {
	return &wsPeer{
		id:      id,
		ws:      ws,
		queue:   make(chan []byte, sendQueueSize),
		metrics: metrics,
		done:    make(chan struct{}),
	}
}

// ID implements Peer.
func (p *wsPeer) ID() string { return p.id }

// Send implements Peer.
func (p *wsPeer) Send(frame []byte) bool {
	select {
	case <-p.done:
		return false
	default:
	}
	select {
	case p.queue <- frame:
		return true
	default:
	}
	// Full: wait for the writer to make room, which holds back only the
	// sending peer. A reader that makes no room in time is not reading.
	t := time.NewTimer(stallTimeout)
	defer t.Stop()
	select {
	case p.queue <- frame:
		return true
	case <-p.done:
		return false
	case <-t.C:
		if !p.closing() {
			p.metrics.slow.Inc()
		}
		p.Close(CloseTooSlow, "outbound queue full: peer is not reading")
		return false
	}
}

// Close implements Peer.
func (p *wsPeer) Close(code int, reason string) { p.disconnect(code, reason, false) }

// fail tells the peer why it is being disconnected and closes. It does not
// wait for room in the queue: a peer being evicted may not be reading.
func (p *wsPeer) fail(code, msg string, closeCode int) {
	select {
	case p.queue <- errorFrame(code, msg):
	default:
	}
	p.closeAfterQueued(closeCode, code)
}

// evict disconnects a peer the hub handed back, with an error frame where
// the peer can carry one.
func evict(p Peer, code, msg string, closeCode int) {
	if wp, ok := p.(*wsPeer); ok {
		wp.fail(code, msg, closeCode)
		return
	}
	p.Close(closeCode, code)
}

// closeAfterQueued sends what is queued (such as an error frame) and then
// the close frame.
func (p *wsPeer) closeAfterQueued(code int, reason string) { p.disconnect(code, reason, true) }

func (p *wsPeer) disconnect(code int, reason string, flush bool) {
	p.closeOnce.Do(func() {
		p.closeCode, p.closeReason, p.flush = code, reason, flush
		close(p.done)
		if !flush {
			// Unblock a write stuck on a peer that is not reading, so the
			// writer sees done and the peer leaves its room now.
			_ = p.ws.UnderlyingConn().SetWriteDeadline(time.Now())
		}
	})
}

// writeLoop sends queued frames and keep-alive pings until the peer
// disconnects, then runs onClose and sends the close frame.
func (p *wsPeer) writeLoop(pingInterval time.Duration, onClose func()) {
	ticker := time.NewTicker(pingInterval)
	defer ticker.Stop()
	for {
		// A closing peer wins over a full queue: select alone would pick
		// at random and could go on writing to a peer that reads nothing.
		if p.closing() {
			break
		}
		select {
		case frame := <-p.queue:
			if err := p.write(frame, time.Now().Add(writeWait)); err != nil {
				p.Close(websocket.CloseAbnormalClosure, "write failed")
			}
		case <-ticker.C:
			if err := p.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				p.Close(websocket.CloseAbnormalClosure, "ping failed")
			}
		case <-p.done:
		}
	}
	onClose()
	p.finish()
}

// errClosing stops a write to a peer that started disconnecting.
var errClosing = errors.New("peer is disconnecting")

// write sends one frame by the deadline. Unless the queue is being flushed
// on purpose, a peer that started disconnecting gets nothing more: checked
// after the deadline is set, so that the immediate deadline Close sets to
// interrupt a stuck write cannot be overwritten by a later one.
func (p *wsPeer) write(frame []byte, deadline time.Time) error {
	if err := p.ws.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if p.closing() && !p.flush {
		return errClosing
	}
	if err := p.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		return err
	}
	p.metrics.frameOut(frame)
	return nil
}

func (p *wsPeer) closing() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// finish flushes if asked, sends the close frame and gives the peer
// closeGrace to answer it; the reader then fails and the connection closes.
// All of it is bounded by closeGrace, also for a peer that reads nothing.
func (p *wsPeer) finish() {
	deadline := time.Now().Add(closeGrace)
	if p.flush {
	drain:
		for {
			select {
			case frame := <-p.queue:
				if p.write(frame, deadline) != nil {
					break drain
				}
			default:
				break drain
			}
		}
	}
	if p.closeCode != websocket.CloseAbnormalClosure {
		msg := websocket.FormatCloseMessage(p.closeCode, p.closeReason)
		_ = p.ws.WriteControl(websocket.CloseMessage, msg, deadline)
	}
	_ = p.ws.SetReadDeadline(deadline)
}

// drainReads discards incoming frames until the connection fails, which
// happens at the latest closeGrace after the close frame went out.
func (p *wsPeer) drainReads() {
	for {
		if _, _, err := p.ws.NextReader(); err != nil {
			return
		}
	}
}
