package signaling

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/tunnel"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// The fallback transport, for networks that break WebSockets: the
// session's frames go to the peer as the events of a text/event-stream
// response to GET <route>/events (same query as the WebSocket), and the
// peer's frames come as POSTs to <route>/send?session=<resume token>, one
// frame each. A stream is admitted, resumed and joined like a WebSocket
// (open, wsserve.go); POSTs go to the session directly, outside any
// transport. A stream that ends without the session ending is a lost
// connection: the session goes away for the resume window.

// Suffixes of the SSE endpoints' paths, under the WebSocket's path.
const (
	eventsSuffix = "/events"
	sendSuffix   = "/send"
)

// ssePing is the comment line that keeps an idle stream (and the proxies
// on its way) alive.
var ssePing = []byte(": ping\n\n")

// sseConn is the SSE transport of a session: one event stream, written by
// its request's goroutine only, which pulls frames from the session the
// way the WebSocket writer does (lock order session, then transport).
type sseConn struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	s       *session.Session // nil for a stream refused before joining, or a front
	fwd     *tunnel.Link     // a front's tunnel to the session's home server
	metrics *hubMetrics
	wakeup  chan struct{} // holds a token when frames may be waiting
	// done closes when the stream starts closing, for the stream's
	// select; writerCore's closing says the same to everyone else.
	done chan struct{}

	// The preface, the locks' order, the batch step and the close state;
	// finished is guarded by its mu too.
	session.WriterCore
	finished bool // the request is over: its writer is not ours to touch
}

var (
	_ peerTransport = (*sseConn)(nil)
	_ tunnel.Front  = (*sseConn)(nil)
)

func newSSEConn(w http.ResponseWriter, metrics *hubMetrics) *sseConn {
	return &sseConn{
		w:       w,
		rc:      http.NewResponseController(w),
		metrics: metrics,
		wakeup:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
}

// Attach implements peerTransport.
func (c *sseConn) Attach(s *session.Session) { c.s = s }

// Say implements peerTransport.
func (c *sseConn) Say(frame []byte) {
	c.Queue(frame)
	c.Wake()
}

// Relay implements tunnel.Front. A client that does not read the home's frames
// is cut off; it resumes.
func (c *sseConn) Relay(frame []byte) {
	c.Mu.Lock()
	queued := c.RelayLocked(frame)
	c.Mu.Unlock()
	if !queued {
		c.end(false)
		return
	}
	c.Wake()
}

// EndFront implements tunnel.Front.
func (c *sseConn) EndFront(int, string) { c.end(true) }

// Forward implements tunnel.Front: the peer's frames come as POSTs, which find
// the session's home by themselves; only the stream's end goes through tun.
func (c *sseConn) Forward(link *tunnel.Link) { c.fwd = link }

// Wake implements transport. It takes no lock: its caller holds the
// session's.
func (c *sseConn) Wake() {
	select {
	case c.wakeup <- struct{}{}:
	default:
	}
}

// Send implements transport.
func (c *sseConn) Send() { c.Wake() }

// Close implements transport.
func (c *sseConn) Close(_ int, _ string, flush bool) { c.end(flush) }

// Displace implements transport.
func (c *sseConn) Displace() { c.DisplaceBy(c) }

// end makes the stream end, after the frames waiting when flush is set.
// Without flush a write stuck on a peer that is not reading is cut short,
// so that the session's end is not held up by it.
func (c *sseConn) end(flush bool) {
	c.CloseOnce(0, "", flush, func() {
		close(c.done)
		if flush {
			return
		}
		c.Mu.Lock()
		defer c.Mu.Unlock()
		if !c.finished {
			_ = c.rc.SetWriteDeadline(time.Now())
		}
	})
}

// stream writes the stream until it ends: the session's frames as they
// come, a ping comment when idle for pingInterval. The client going away,
// a failed write or the server shutting down (stop) is a lost connection;
// a session that ended or moved to another transport ends the stream
// after its last frames.
func (c *sseConn) stream(ctx context.Context, stop <-chan struct{}, pingInterval time.Duration) {
	ticker := time.NewTicker(pingInterval)
	defer ticker.Stop()
	lost := false
	for !lost && !c.Closing() {
		if err := c.writeWaiting(); err != nil {
			lost = true
			break
		}
		select {
		case <-c.wakeup:
		case <-c.done:
		case <-ticker.C:
			lost = c.write(ssePing, time.Now().Add(writeWait)) != nil
		case <-ctx.Done():
			lost = true
		case <-stop:
			lost = true
		}
	}
	c.finish(lost)
}

// writeWaiting writes what waits until nothing does or the stream closes.
func (c *sseConn) writeWaiting() error {
	var stack [64]session.Frame
	for {
		frames := c.next(stack[:0], false)
		if len(frames) == 0 {
			return nil
		}
		if err := c.writeEvents(frames, time.Now().Add(writeWait)); err != nil {
			return err
		}
	}
}

// next takes the frames to write next: the stream's own, then the
// session's. Unless flushing, a closing stream gets nothing more, so that
// nothing more is written to a peer that reads nothing.
func (c *sseConn) next(batch []session.Frame, flushing bool) []session.Frame {
	c.LockWith(c.s)
	defer c.UnlockWith(c.s)
	if c.Closing() && !flushing {
		return batch
	}
	frames, _ := c.TakeLocked(c.s, c, batch, false)
	return frames
}

// finish sees the stream out. A lost stream leaves its session away (or
// gone, when resume is off); a session that ended leaves its room now,
// before its last frames are flushed, so that a peer that reads nothing is
// gone for the others at once.
func (c *sseConn) finish(lost bool) {
	if lost {
		if c.s != nil {
			c.s.Lost(c, false)
		}
		if c.fwd != nil {
			c.fwd.Close(1006, "")
		}
		// Closing, but with no deadline to cut a write short: there is
		// none, and a stream the server ends (stop) ends cleanly.
		c.CloseOnce(0, "", false, func() { close(c.done) })
	}
	if c.s != nil && c.s.IsEnded() {
		c.s.Leave()
	}
	if c.FlushOnClose {
		deadline := time.Now().Add(closeGrace)
		var stack [64]session.Frame
		for {
			frames := c.next(stack[:0], true)
			if len(frames) == 0 || c.writeEvents(frames, deadline) != nil {
				break
			}
		}
	}
	c.Mu.Lock()
	c.finished = true
	c.Mu.Unlock()
}

// writeEvents writes frames as events, one write and one flush for all.
// Unless the stream is being flushed on purpose, a stream that started
// closing gets nothing more: checked after the deadline is set, so that
// the immediate deadline end sets to interrupt a stuck write cannot be
// overwritten by this one.
func (c *sseConn) writeEvents(frames []session.Frame, deadline time.Time) error {
	buf := batchBuffers.Get().(*[]byte)
	defer batchBuffers.Put(buf)
	b := (*buf)[:0]
	for _, f := range frames {
		b = appendEvent(b, f)
	}
	*buf = b
	if err := c.write(b, deadline); err != nil {
		return err
	}
	for _, f := range frames {
		c.metrics.FrameOut(f.B)
	}
	return nil
}

// write writes b and flushes it through Caddy's writer wrappers (the
// ResponseController follows Unwrap), within deadline.
func (c *sseConn) write(b []byte, deadline time.Time) error {
	// Not every writer supports deadlines (ErrNotSupported): then the
	// write is bounded by the connection failing.
	_ = c.rc.SetWriteDeadline(deadline)
	if c.Closing() && !c.FlushOnClose {
		return errClosing
	}
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	if err := c.rc.Flush(); err != nil {
		return err
	}
	// An idle stream must not run into the deadline: HTTP/2 resets a
	// stream whose deadline passes, write or not.
	_ = c.rc.SetWriteDeadline(time.Time{})
	return nil
}

// appendEvent appends f as one event: "id: <seq>" unless f is unsequenced,
// and the frame in "data:" lines. Relayed data may hold line breaks
// between JSON tokens; each starts a new data line, and the client joins
// them with "\n", which leaves the JSON as it was.
func appendEvent(b []byte, f session.Frame) []byte {
	seq := f.Seq
	if seq == 0 {
		seq = leadingSeq(f.B) // a frame relayed from the session's home
	}
	if seq != 0 {
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, seq, 10)
		b = append(b, '\n')
	}
	if !bytes.ContainsAny(f.B, "\r\n") {
		b = append(b, "data: "...)
		return append(f.Sequenced(b), "\n\n"...)
	}
	rest := f.Sequenced(nil)
	for {
		b = append(b, "data: "...)
		i := bytes.IndexAny(rest, "\r\n")
		if i < 0 {
			b = append(b, rest...)
			return append(b, "\n\n"...)
		}
		b = append(b, rest[:i]...)
		b = append(b, '\n')
		if rest[i] == '\r' && i+1 < len(rest) && rest[i+1] == '\n' {
			i++
		}
		rest = rest[i+1:]
	}
}

// leadingSeq is the seq a sequenced frame starts with, or 0.
func leadingSeq(frame []byte) uint64 {
	rest, ok := bytes.CutPrefix(frame, []byte(`{"seq":`))
	if !ok {
		return 0
	}
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		return 0
	}
	n, _ := strconv.ParseUint(string(rest[:end]), 10, 64)
	return n
}

// serveEvents runs an event stream: the peer is admitted as on a
// WebSocket, and refused with a stream whose only event is the error frame
// (EventSource cannot read a status).
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeErrorFrame(w, http.StatusMethodNotAllowed, wire.CodeBadMessage, "open the event stream with GET")
		return
	}
	release, ok := h.acquireConnection(w, r)
	if !ok {
		return
	}
	defer release()
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // nginx in front: do not buffer
	h.allowOrigin(w, r)
	w.WriteHeader(http.StatusOK)
	c := newSSEConn(w, h.metrics)
	if why := h.open(c, r); why.code != "" {
		h.metrics.refused(why.code)
		c.Say(wire.Error(why.code, why.reason))
		c.end(true)
	}
	c.stream(r.Context(), h.streamsStop, time.Duration(h.PingInterval))
}

// serveSend takes one frame the peer POSTs for its session, named by the
// session's current resume token. Problems with the frame itself are the
// answer's status and body; others (unknown_peer) go on the event stream,
// as on a WebSocket; fatal ones end the session too.
func (h *Handler) serveSend(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeErrorFrame(w, http.StatusMethodNotAllowed, wire.CodeBadMessage, "send frames with POST")
		return
	}
	if !h.origins.allowed(r) {
		writeErrorFrame(w, http.StatusForbidden, wire.CodeForbiddenOrigin, "origin "+wire.Quote(r.Header.Get("Origin"))+" may not connect")
		return
	}
	h.allowOrigin(w, r)
	// One byte over the limit is enough for the session to refuse it.
	body, err := io.ReadAll(io.LimitReader(r.Body, h.MaxMessageSize+1))
	if err != nil {
		writeErrorFrame(w, http.StatusBadRequest, wire.CodeBadMessage, "reading the frame failed")
		return
	}
	token := r.URL.Query().Get("session")
	status, answer, here := answerPost(h.state.sessions, token, body)
	if !here {
		status, answer = h.forwardPost(token, body)
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

// answerPost acts on a frame posted for the session of sessions token
// names, if this server holds it, and says how to answer the post.
func answerPost(sessions *session.Registry, token string, body []byte) (status int, answer []byte, here bool) {
	s := sessions.Current(token)
	if s == nil || s.IsEnded() {
		return 0, nil, false
	}
	v := s.Receive(nil, body, true)
	status = sendStatus(v.Code)
	if status == 0 || v.CloseCode != 0 {
		s.Reply(v)
	}
	if v.Code == "" || status == 0 {
		if v.Code != "" {
			s.Logger().Debug("frame refused on the stream", zap.String("peer", s.ID()), zap.String("code", v.Code))
		}
		return http.StatusNoContent, nil, true
	}
	return status, wire.Error(v.Code, v.Message), true
}

// forwardPost carries a post for a session this server does not hold to
// the server of the hub that does, if the hub spans servers.
func (h *Handler) forwardPost(token string, body []byte) (int, []byte) {
	unknown := wire.Error(wire.CodeUnknownSession, "no such session: reconnect")
	p, ok := h.hub.(hub.Posts)
	if !ok || !session.WellFormedToken(token) {
		return http.StatusNotFound, unknown
	}
	answer, err := p.ForwardPost(encodePost(token, body))
	if err != nil {
		return http.StatusNotFound, unknown
	}
	status, rest, ok := decodeAnswer(answer)
	if !ok {
		return http.StatusNotFound, unknown
	}
	return status, rest
}

// acceptPost answers, on the server holding a session, posts another
// server forwarded.
func acceptPost(sessions *session.Registry) func([]byte) ([]byte, bool) {
	return func(post []byte) ([]byte, bool) {
		token, body, ok := decodePost(post)
		if !ok {
			return nil, false
		}
		status, answer, here := answerPost(sessions, token, body)
		if !here {
			return nil, false
		}
		return append([]byte(strconv.Itoa(status)+"\n"), answer...), true
	}
}

// A forwarded post is the token, a line break and the body; its answer is
// the status, a line break and the answer's body.
func encodePost(token string, body []byte) []byte {
	return append([]byte(token+"\n"), body...)
}

func decodePost(post []byte) (token string, body []byte, ok bool) {
	t, body, ok := bytes.Cut(post, []byte("\n"))
	return string(t), body, ok
}

func decodeAnswer(answer []byte) (int, []byte, bool) {
	s, body, ok := bytes.Cut(answer, []byte("\n"))
	status, err := strconv.Atoi(string(s))
	return status, body, ok && err == nil && status >= 200 && status < 600
}

// sendStatus is the status of a POST whose frame got verdict code; 0 when
// the verdict goes on the stream instead.
func sendStatus(code string) int {
	switch code {
	case wire.CodeBadMessage:
		return http.StatusBadRequest
	case wire.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case wire.CodeRateLimited:
		return http.StatusTooManyRequests
	}
	return 0
}

// writeErrorFrame answers with status and an error frame as the body.
func writeErrorFrame(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(wire.Error(code, msg))
}

// allowOrigin lets a page of an allowed origin read the answer (CORS):
// unlike a WebSocket, EventSource and fetch need it across origins.
func (h *Handler) allowOrigin(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" && h.origins.allowed(r) {
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Add("Vary", "Origin")
	}
}

// sseEndpoint says which SSE endpoint r's path names, if any.
func sseEndpoint(r *http.Request) string {
	switch p := r.URL.Path; {
	case strings.HasSuffix(p, eventsSuffix):
		return eventsSuffix
	case strings.HasSuffix(p, sendSuffix):
		return sendSuffix
	}
	return ""
}
