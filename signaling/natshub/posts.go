package natshub

import (
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/nats-io/nats.go"
)

// Posts: a frame POSTed (the SSE transport) to a server that does not hold
// its session goes as a request to every server of the hub, on the hub's
// post subject; the one holding the session answers, the others stay
// silent. The client sends its posts one at a time, so they keep their
// order.

// postWait bounds the wait for the server holding a session to answer.
const postWait = 2 * time.Second

var _ hub.Posts = (*Hub)(nil)

func (h *Hub) postSubject() string { return h.cfg.prefix + ".post." + h.keyPfx }

// AcceptPosts implements hub.Posts.
func (h *Hub) AcceptPosts(answer func([]byte) ([]byte, bool)) {
	h.tunnels.mu.Lock()
	defer h.tunnels.mu.Unlock()
	h.tunnels.answerPost = answer
}

// ForwardPost implements hub.Posts.
func (h *Hub) ForwardPost(post []byte) ([]byte, error) {
	if err := h.connected(); err != nil {
		return nil, err
	}
	m, err := h.nc.Request(h.postSubject(), post, postWait)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

// onPost answers a post for a session of this server.
func (h *Hub) onPost(m *nats.Msg) {
	h.tunnels.mu.Lock()
	answer := h.tunnels.answerPost
	h.tunnels.mu.Unlock()
	if answer == nil {
		return
	}
	if a, ok := answer(m.Data); ok {
		_ = m.Respond(a)
	}
}
