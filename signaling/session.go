package signaling

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// transport carries a session's frames to and from its peer: a WebSocket,
// or an SSE stream with POSTed frames. The session does not know which.
type transport interface {
	// wake says frames are waiting in the session's outbox; the caller
	// holds the session's lock.
	wake()
	// send is wake from a caller that holds no lock, so the transport
	// may write on the caller's goroutine.
	send()
	// close ends the transport with a close code; with flush, the frames
	// waiting go out first. It is how a session that ends says goodbye.
	close(code int, reason string, flush bool)
	// displace ends a transport whose session a resume moved to another
	// one: the peer is told `replaced`, and the session goes on.
	displace()
}

// session is one peer's membership of a room, and the Peer its hub knows:
// its frames with their sequence numbers, what it has processed of the
// peer's frames, and the transport carrying it. It outlives transports: a
// connection that is lost leaves the session away for the resume window,
// its frames buffered, until a reconnect that presents its resume token
// attaches a new transport. Everything a session has ends in end.
type session struct {
	id   string
	cfg  *sessionConfig
	room string
	user string // for TURN credentials in a resume's welcome
	ip   string // the client's address, whose away sessions are capped
	gate frameGate

	joinErr error // why the session could not join

	mu    sync.Mutex
	out   outbox
	tr    transport     // nil while away
	space chan struct{} // made when a sender first waits for room
	gen   uint64        // of the resume token
	away  *time.Timer   // runs out the resume window
	// awaySlot gives back the place the session holds among its
	// address's away sessions (hubState.away) while away.
	awaySlot func()
	// overflowed is set when an away peer missed too much; it is then
	// being ended.
	overflowed bool
	done       chan struct{} // closed, under mu, when the session ends

	leaveOnce sync.Once

	inMu  sync.Mutex // one frame of the peer's at a time, whatever the transport
	inAck uint64     // the last of the peer's seq processed
}

var _ hub.Peer = (*session)(nil)

// sessionConfig is all a session knows of the handler that made it: the
// hub it is a member of, where this process keeps that hub's sessions and
// away places, and the handler's options. The handler builds it once, and
// its sessions share it; a session keeps it across reloads, as it keeps
// the hub.
type sessionConfig struct {
	hubName        string
	hub            hub.Hub
	logger         *zap.Logger
	metrics        *hubMetrics
	limits         Limits
	maxMessageSize int64
	resumeWindow   time.Duration // 0: resume is off
	sessions       *sessionRegistry
	away           *ipConns // away sessions per client IP
	// resumedWelcome renders the welcome answering a resume that came
	// through another server, the request being the front's.
	resumedWelcome func(s *session, r *http.Request) func([]wire.PeerInfo, string, uint64) []byte
}

func newSession(cfg *sessionConfig, room string, info wire.PeerInfo) *session {
	s := &session{
		id:   newPeerID(),
		cfg:  cfg,
		room: room,
		user: info.User,
		done: make(chan struct{}),
	}
	s.out.retain = cfg.resumeWindow > 0
	return s
}

// leave takes the peer out of its room, once.
func (s *session) leave() { s.leaveOnce.Do(s.leaveRoom) }

func (s *session) leaveRoom() {
	s.cfg.sessions.remove(s)
	s.cfg.hub.Leave(s.room, s.id)
	s.mu.Lock()
	if s.tr == nil {
		s.out = outbox{} // what an away peer missed goes now, not with the session
	}
	s.mu.Unlock()
	s.cfg.metrics.leaves.Inc()
	s.cfg.logger.Debug("peer left", zap.String("room", s.room), zap.String("peer", s.id))
}

// ID implements Peer.
func (s *session) ID() string { return s.id }

// Send implements Peer.
func (s *session) Send(frame []byte) bool {
	if queued, full := s.enqueue(frame); !full {
		return queued
	}
	return s.waitForRoom(frame)
}

// TrySend implements Peer.
func (s *session) TrySend(frame []byte) bool {
	queued, _ := s.enqueue(frame)
	return queued
}

// enqueue queues frame, or keeps it for an away peer; full says it could
// not because the queue is full (see queueFull).
func (s *session) enqueue(frame []byte) (queued, full bool) {
	s.mu.Lock()
	if s.isEnded() {
		s.mu.Unlock()
		return false, false
	}
	if s.tr == nil {
		return s.buffer(frame), false // unlocks
	}
	if s.out.queueFull(len(frame)) {
		s.mu.Unlock()
		return false, true
	}
	s.out.push(frame)
	tr := s.tr
	s.mu.Unlock()
	// Woken after the push, the writer cannot miss the frame. Should a
	// resume swap transports meanwhile, the old one finds nothing to take
	// and the new one was woken by the swap.
	tr.send()
	return true, false
}

// buffer keeps a frame for an away peer; the caller holds s.mu, which
// buffer releases. A peer that misses too much is not coming back to a
// usable state: it is dropped.
func (s *session) buffer(frame []byte) bool {
	if s.overflowed {
		s.mu.Unlock()
		return false
	}
	if s.out.awayFull(len(frame)) {
		s.overflowed = true
		s.mu.Unlock()
		s.cfg.metrics.resume("overflow")
		// Not on the sender's goroutine: leaving tells the room, which
		// may be what is calling.
		go s.end(wire.CloseGoingAway, "away too long", false)
		return false
	}
	s.out.push(frame)
	s.mu.Unlock()
	return true
}

// waitForRoom queues a frame to a full queue once the writer makes room,
// which holds back only the sending peer. A reader that makes no room in
// time is not reading.
func (s *session) waitForRoom(frame []byte) bool {
	t := time.NewTimer(stallTimeout)
	defer t.Stop()
	for {
		s.mu.Lock()
		if s.isEnded() {
			s.mu.Unlock()
			return false
		}
		if s.tr == nil {
			return s.buffer(frame)
		}
		if !s.out.queueFull(len(frame)) {
			s.out.push(frame)
			s.tr.wake()
			s.signalSpace() // room may be left for another waiting sender
			s.mu.Unlock()
			return true
		}
		if s.space == nil {
			s.space = make(chan struct{}, 1)
		}
		space := s.space
		s.mu.Unlock()
		select {
		case <-space:
		case <-s.done:
			return false
		case <-t.C:
			s.cfg.metrics.slow.Inc()
			s.end(wire.CloseTooSlow, "outbound queue full: peer is not reading", false)
			return false
		}
	}
}

// signalSpace wakes a sender waiting for room, if any; the caller holds s.mu.
func (s *session) signalSpace() {
	if s.space == nil || s.out.queueFull(0) {
		return
	}
	select {
	case s.space <- struct{}{}:
	default:
	}
}

// take hands transport t the frames waiting, if t carries the session.
func (s *session) take(t transport, dst []outFrame) []outFrame {
	if s.tr != t {
		return dst
	}
	dst = s.out.take(dst, maxBatch)
	s.signalSpace()
	return dst
}

// peerAcked lets go of frames up to seq, which the peer says it
// processed; it reports false for a seq never written.
func (s *session) peerAcked(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.out.lastTaken() {
		return false
	}
	s.out.acked(seq)
	return true
}

// acked lets go of frames up to seq, which transport t proved arrived.
func (s *session) acked(t transport, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tr == t {
		s.out.acked(seq)
	}
}

// Close implements Peer: the hub ends the session (shutdown, or a seat
// taken over).
func (s *session) Close(code int, reason string) { s.end(code, reason, false) }

// fatal tells the peer why it is being disconnected and ends the session.
// It does not wait for room in the queue: a peer being evicted may not be
// reading.
func (s *session) fatal(code, msg string, closeCode int) {
	s.mu.Lock()
	if f := wire.Error(code, msg); !s.isEnded() && !s.out.queueFull(len(f)) {
		s.out.push(f)
		if s.tr != nil {
			s.tr.wake()
		}
	}
	s.mu.Unlock()
	s.end(closeCode, code, true)
}

// end takes the peer out of its room for good and closes its transport,
// whose writer then sees it out (so a slow peer is gone for the others at
// once); without a transport it leaves here.
func (s *session) end(code int, reason string, flush bool) {
	s.mu.Lock()
	if s.isEnded() {
		s.mu.Unlock()
		return
	}
	close(s.done) // under s.mu: once
	if s.away != nil {
		s.away.Stop()
	}
	s.comeBack()
	tr := s.tr
	s.mu.Unlock()
	if tr != nil {
		tr.close(code, reason, flush)
		return
	}
	s.leave()
}

// isEnded reports whether the session is over.
func (s *session) isEnded() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// lost is called when transport t is gone without the session ending: the
// peer stays, away, for the resume window, unless it said goodbye (close
// 1000) or resume is off.
func (s *session) lost(t transport, goodbye bool) {
	s.mu.Lock()
	if s.tr != t || s.isEnded() {
		s.mu.Unlock()
		return
	}
	s.tr = nil
	window := s.cfg.resumeWindow
	if goodbye || window <= 0 {
		s.mu.Unlock()
		s.end(wire.CloseNormal, "", false)
		return
	}
	if s.out.awayFull(0) {
		// What waited for the connection is already more than an away
		// peer may be kept: it is not coming back to a usable state.
		s.overflowed = true
		s.mu.Unlock()
		s.cfg.metrics.resume("overflow")
		s.end(wire.CloseGoingAway, "away too long", false)
		return
	}
	if !s.goAway() {
		s.mu.Unlock()
		s.cfg.metrics.resume("refused")
		s.end(wire.CloseNormal, "", false)
		return
	}
	var timer *time.Timer
	timer = time.AfterFunc(window, func() {
		s.mu.Lock()
		expired := s.away == timer && s.tr == nil && !s.isEnded()
		s.mu.Unlock()
		if expired {
			s.cfg.metrics.resume("expired")
			s.end(wire.CloseNormal, "", false)
		}
	})
	s.away = timer
	s.mu.Unlock()
	s.cfg.logger.Debug("peer away", zap.String("room", s.room), zap.String("peer", s.id))
}

// goAway takes a place among the away sessions of the peer's address,
// at most connections_per_ip of them; it reports false when there is
// none, and the session must end. The caller holds s.mu.
func (s *session) goAway() bool {
	release, ok := s.cfg.away.acquire(s.ip, s.cfg.limits.ConnectionsPerIP)
	if ok {
		s.awaySlot = release
	}
	return ok
}

// comeBack gives back the session's place among its address's away
// sessions, if it holds one; the caller holds s.mu.
func (s *session) comeBack() {
	if s.awaySlot != nil {
		s.awaySlot()
		s.awaySlot = nil
	}
}

// resume attaches transport t to the session for a peer that processed
// frames up to lastSeq and presented the token of generation gen. It
// returns the welcome that answers the resume, to go out before the frames
// replayed, or nil when the session cannot resume.
func (s *session) resume(t transport, gen, lastSeq uint64, welcome func(members []wire.PeerInfo, token string, ack uint64) []byte) []byte {
	// Waits for a frame the old transport is handling, and keeps it from
	// handling more, so that ack is exact.
	s.inMu.Lock()
	defer s.inMu.Unlock()
	// Listed before the session's lock is taken: the hub takes its own
	// locks, under which it may send to peers. A change in between comes
	// after as a peer-joined or peer-left.
	members := s.cfg.hub.Members(s.room, s.id)
	s.mu.Lock()
	if s.isEnded() || gen != s.gen || !s.out.rewind(lastSeq) {
		s.mu.Unlock()
		return nil
	}
	s.gen++
	old := s.tr
	s.tr = t
	s.comeBack()
	if s.away != nil {
		s.away.Stop()
		s.away = nil // should it have fired already, it finds itself replaced
	}
	w := welcome(members, sessionToken(s.cfg.hubName, s.room, s.id, s.gen), s.inAck)
	s.mu.Unlock()
	if old != nil {
		old.displace()
	}
	return w
}

// currentGen is the generation of the session's current token.
func (s *session) currentGen() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// receive acts on one frame from the peer, which came over transport t (nil
// for a frame POSTed outside any stream). The answer is a problem to report
// to the sender, or the zero verdict.
func (s *session) receive(t transport, data []byte, text bool) verdict {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if t != nil && !s.carriedBy(t) {
		return verdict{} // the session moved on to another transport
	}
	if s.isEnded() {
		return verdict{}
	}
	if v := s.gate.admit(len(data), s.cfg.maxMessageSize, s.cfg.limits, s.cfg.metrics); v.code != "" {
		return v
	}
	return s.handle(data, text)
}

// carriedBy reports whether t is the session's transport.
func (s *session) carriedBy(t transport) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tr == t
}

// seen reports whether a frame numbered seq was processed already, and
// otherwise records it; the caller holds s.inMu.
func (s *session) seen(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq <= s.inAck {
		return true
	}
	s.inAck = seq
	return false
}

// reply sends the peer a verdict over its stream: an error frame, and the
// end of the session when it is fatal.
func (s *session) reply(v verdict) {
	switch {
	case v.code == "":
	case v.closeCode != 0:
		s.fatal(v.code, v.message, v.closeCode)
	default:
		s.Send(wire.Error(v.code, v.message))
	}
}

// verdict is a problem with a frame the peer sent: an error code and
// message, and a close code when the session ends over it.
type verdict struct {
	code, message string
	closeCode     int
}

// resumeSeq parses the last_seq query parameter.
func resumeSeq(v string) (uint64, bool) {
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}
