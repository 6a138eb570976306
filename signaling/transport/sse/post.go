package sse

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
	"go.uber.org/zap"
)

// AnswerPost acts on a frame posted for the session of sessions token
// names, if this server holds it, and says how to answer the post.
func AnswerPost(sessions *session.Registry, token string, body []byte) (status int, answer []byte, here bool) {
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

// ForwardPost carries a post for a session this server does not hold to
// the server of h that does, if h spans servers.
func ForwardPost(h hub.Hub, token string, body []byte) (int, []byte) {
	unknown := wire.Error(wire.CodeUnknownSession, "no such session: reconnect")
	p, ok := h.(hub.Posts)
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

// AcceptPost answers, on the server holding a session, posts another
// server forwarded.
func AcceptPost(sessions *session.Registry) func([]byte) ([]byte, bool) {
	return func(post []byte) ([]byte, bool) {
		token, body, ok := decodePost(post)
		if !ok {
			return nil, false
		}
		status, answer, here := AnswerPost(sessions, token, body)
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
