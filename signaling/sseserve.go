package signaling

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/transport/sse"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// The SSE transport's endpoints (package sse has the stream and what a
// POST does): GET <route>/events opens a stream, admitted, resumed and
// joined like a WebSocket (open); POST <route>/send?session=<resume token>
// carries one frame of the peer's to its session, here or, through the
// hub, on the server holding it.

var _ peerTransport = (*sse.Stream)(nil)

// Suffixes of the SSE endpoints' paths, under the WebSocket's path.
const (
	eventsSuffix = "/events"
	sendSuffix   = "/send"
)

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
	c := sse.NewStream(w, h.metrics)
	if why := h.open(c, r); why.code != "" {
		h.metrics.refused(why.code)
		c.Refuse(wire.Error(why.code, why.reason))
	}
	c.Run(r.Context(), h.streamsStop, time.Duration(h.PingInterval))
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
	status, answer, here := sse.AnswerPost(h.state.sessions, token, body)
	if !here {
		status, answer = sse.ForwardPost(h.hub, token, body)
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
