package session

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

const (
	// SendQueueSize bounds the frames waiting for one peer; a peer that lets
	// it fill up is disconnected rather than stalling its room.
	SendQueueSize = 256
	// StallTimeout is how long a sender waits for room in a full queue
	// before the reader counts as not reading.
	StallTimeout = 5 * time.Second
	// MaxBatch bounds the bytes of one batch a transport takes from the
	// outbox (take): what a WebSocket writer sends in one write.
	MaxBatch = 16 << 10
)

// Transport carries a session's frames to and from its peer: a WebSocket,
// or an SSE stream with POSTed frames. The session does not know which.
type Transport interface {
	// Wake says frames are waiting in the session's outbox; the caller
	// holds the session's lock.
	Wake()
	// Send is wake from a caller that holds no lock, so the transport
	// may write on the caller's goroutine.
	Send()
	// Close ends the transport with a Close code; with flush, the frames
	// waiting go out first. It is how a session that ends says goodbye.
	Close(code int, reason string, flush bool)
	// Displace ends a transport whose session a resume moved to another
	// one: the peer is told `replaced`, and the session goes on.
	Displace()
}

// Session is one peer's membership of a room, and the Peer its hub knows:
// its frames with their sequence numbers, what it has processed of the
// peer's frames, and the transport carrying it. It outlives transports: a
// connection that is lost leaves the Session away for the resume window,
// its frames buffered, until a reconnect that presents its resume token
// attaches a new transport. Everything a Session has ends in end.
type Session struct {
	id   string
	cfg  *Config
	room string
	user string // for TURN credentials in a resume's welcome
	name string // for the webhooks' events
	ip   string // the client's address, whose away sessions are capped
	gate Gate
	// joined is when the session was made to join its room.
	joined time.Time

	mu    sync.Mutex
	kind  string // of the transport carrying it last (TransportKind)
	out   outbox
	tr    Transport     // nil while away
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
	// why the session ended (EventPeerLeft's reason), set with done;
	// joinedEv and leftEv say peer_joined and peer_left were reported.
	why              string
	joinedEv, leftEv atomic.Bool

	inMu  sync.Mutex // one frame of the peer's at a time, whatever the transport
	inAck uint64     // the last of the peer's seq processed
}

var _ hub.Peer = (*Session)(nil)

// Config is all a session knows of the handler that made it: the
// hub it is a member of, where this process keeps that hub's sessions and
// away places, and the handler's options. The handler builds it once, and
// its sessions share it; a session keeps it across reloads, as it keeps
// the hub.
type Config struct {
	HubName string // in session tokens, which are worthless in another hub
	Hub     hub.Hub
	Logger  *zap.Logger
	Metrics Metrics
	// MaxMessageSize, FramesPerSecond and Burst bound each peer's frames
	// (Gate): the size of one, and a token bucket of Burst frames refilled
	// at FramesPerSecond.
	MaxMessageSize  int64
	FramesPerSecond float64
	Burst           int
	ResumeWindow    time.Duration // 0: resume is off
	Sessions        *Registry
	// Away counts the sessions away per client address, at most
	// AwayPerAddr of them (connections_per_ip): an address cannot pile up
	// seats by dropping its connections.
	Away        *AddrSlots
	AwayPerAddr int
	// ResumedWelcome renders the welcome answering a resume that came
	// through another server, the request being the front's.
	ResumedWelcome func(s *Session, r *http.Request) func([]wire.PeerInfo, string, uint64) []byte
	// Events, when set, hears of the sessions' joins, resumes and leaves
	// and the rooms they start and finish (events.go), for the webhooks.
	// It must not block.
	Events func(Event)
}

// Metrics is what a session and its transports count; the Caddy face's
// per-hub counters implement it.
type Metrics interface {
	FrameIn(typ string, size int) // a frame of the peer's ("invalid" for one not understood)
	FrameOut(frame []byte)        // a frame written to the peer
	Resume(result string)         // what became of a session after a lost connection
	Left()                        // a peer left its room
	SlowDropped()                 // a peer ended for not reading (4408)
	RateLimited()                 // a frame dropped for the frame rate
}

// New makes a session of cfg's hub for a peer about to join room.
// Its transport is t from the start, so that the frames the hub sends it
// while it joins (the welcome first) have a way out; ip is the client's
// address, whose away sessions are capped.
func New(cfg *Config, room string, info wire.PeerInfo, ip string, t Transport) *Session {
	s := &Session{
		id:     NewPeerID(),
		cfg:    cfg,
		room:   room,
		user:   info.User,
		name:   info.Name,
		ip:     ip,
		tr:     t,
		kind:   kindOf(t, ""),
		joined: time.Now(),
		done:   make(chan struct{}),
	}
	s.out.retain = cfg.ResumeWindow > 0
	return s
}

// Leave takes the peer out of its room, once.
func (s *Session) Leave() { s.leaveOnce.Do(s.leaveRoom) }

func (s *Session) leaveRoom() {
	s.cfg.Sessions.Remove(s)
	s.cfg.Hub.Leave(s.room, s.id)
	s.Left(false) // for a seat taken over (Replace), or a hub without hub.Watcher
	s.mu.Lock()
	if s.tr == nil {
		s.out = outbox{} // what an away peer missed goes now, not with the session
	}
	s.mu.Unlock()
	s.cfg.Metrics.Left()
	s.cfg.Logger.Debug("peer left", zap.String("room", s.room), zap.String("peer", s.id))
}

// Join makes the session a member of its room with req, and known to its
// registry; replaced is a peer whose seat it took over (req.Replace).
func (s *Session) Join(req hub.JoinRequest) (replaced hub.Peer, err error) {
	replaced, err = s.cfg.Hub.Join(s.room, s, req)
	for errors.Is(err, hub.ErrDuplicateID) { // practically impossible with 128-bit ids
		s.id = NewPeerID()
		replaced, err = s.cfg.Hub.Join(s.room, s, req)
	}
	if err == nil {
		s.cfg.Sessions.Add(s)
		s.Joined(false) // for a hub without hub.Watcher
	}
	return replaced, err
}

// Room is the session's room.
func (s *Session) Room() string { return s.room }

// User is the peer's user id, as it joined.
func (s *Session) User() string { return s.user }

// Logger is the session's handler's.
func (s *Session) Logger() *zap.Logger { return s.cfg.Logger }

// Metrics is the session's handler's.
func (s *Session) Metrics() Metrics { return s.cfg.Metrics }

// Replays reports whether frames written stay in the outbox until the peer
// proves it has them (resume is on): only then do acknowledgements matter.
func (s *Session) Replays() bool { return s.out.retain }

// AckWaitLocked is since when frames written on t have waited for an
// acknowledgement (MonoNow), or 0; 0 too once a resume moved the session
// to another transport, since what waits then is that one's. The caller
// holds s's lock (WriterCore.LockWith).
func (s *Session) AckWaitLocked(t Transport) int64 {
	if s.tr != t {
		return 0
	}
	return s.out.ackWait()
}

// WrittenLocked is the seq of the last frame written on t, which a pong to
// a ping carrying it proves arrived; 0 on a displaced transport, whose
// pong must not acknowledge frames written on the session's new one. The
// caller holds s's lock (WriterCore.LockWith).
func (s *Session) WrittenLocked(t Transport) uint64 {
	if s.tr != t {
		return 0
	}
	return s.out.lastTaken()
}

// ID implements Peer.
func (s *Session) ID() string { return s.id }

// Send implements Peer.
func (s *Session) Send(frame []byte) bool {
	if queued, full := s.enqueue(frame); !full {
		return queued
	}
	return s.waitForRoom(frame)
}

// TrySend implements Peer.
func (s *Session) TrySend(frame []byte) bool {
	queued, _ := s.enqueue(frame)
	return queued
}

// enqueue queues frame, or keeps it for an away peer; full says it could
// not because the queue is full (see queueFull).
func (s *Session) enqueue(frame []byte) (queued, full bool) {
	s.mu.Lock()
	if s.IsEnded() {
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
	tr.Send()
	return true, false
}

// buffer keeps a frame for an away peer; the caller holds s.mu, which
// buffer releases. A peer that misses too much is not coming back to a
// usable state: it is dropped.
func (s *Session) buffer(frame []byte) bool {
	if s.overflowed {
		s.mu.Unlock()
		return false
	}
	if s.out.awayFull(len(frame)) {
		s.overflowed = true
		s.mu.Unlock()
		s.cfg.Metrics.Resume("overflow")
		// Not on the sender's goroutine: leaving tells the room, which
		// may be what is calling.
		go s.end(wire.CloseGoingAway, "away too long", false, ReasonLost)
		return false
	}
	s.out.push(frame)
	s.mu.Unlock()
	return true
}

// waitForRoom queues a frame to a full queue once the writer makes room,
// which holds back only the sending peer. A reader that makes no room in
// time is not reading.
func (s *Session) waitForRoom(frame []byte) bool {
	t := time.NewTimer(StallTimeout)
	defer t.Stop()
	for {
		s.mu.Lock()
		if s.IsEnded() {
			s.mu.Unlock()
			return false
		}
		if s.tr == nil {
			return s.buffer(frame)
		}
		if !s.out.queueFull(len(frame)) {
			s.out.push(frame)
			s.tr.Wake()
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
			s.cfg.Metrics.SlowDropped()
			s.End(wire.CloseTooSlow, "outbound queue full: peer is not reading", false)
			return false
		}
	}
}

// signalSpace wakes a sender waiting for room, if any; the caller holds s.mu.
func (s *Session) signalSpace() {
	if s.space == nil || s.out.queueFull(0) {
		return
	}
	select {
	case s.space <- struct{}{}:
	default:
	}
}

// take hands transport t the frames waiting, if t carries the session.
func (s *Session) take(t Transport, dst []Frame) []Frame {
	if s.tr != t {
		return dst
	}
	dst = s.out.take(dst, MaxBatch)
	s.signalSpace()
	return dst
}

// peerAcked lets go of frames up to seq, which the peer says it
// processed; it reports false for a seq never written.
func (s *Session) peerAcked(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.out.lastTaken() {
		return false
	}
	s.out.acked(seq)
	return true
}

// Acked lets go of frames up to seq, which transport t proved arrived.
func (s *Session) Acked(t Transport, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tr == t {
		s.out.acked(seq)
	}
}

// Close implements Peer: the hub ends the session (shutdown, or a seat
// taken over).
func (s *Session) Close(code int, reason string) { s.End(code, reason, false) }

// Fatal tells the peer why it is being disconnected and ends the session.
// It does not wait for room in the queue: a peer being evicted may not be
// reading.
func (s *Session) Fatal(code, msg string, closeCode int) {
	s.mu.Lock()
	if f := wire.Error(code, msg); !s.IsEnded() && !s.out.queueFull(len(f)) {
		s.out.push(f)
		if s.tr != nil {
			s.tr.Wake()
		}
	}
	s.mu.Unlock()
	s.End(closeCode, code, true)
}

// End takes the peer out of its room for good and closes its transport,
// whose writer then sees it out (so a slow peer is gone for the others at
// once); without a transport it leaves here.
func (s *Session) End(code int, reason string, flush bool) { s.end(code, reason, flush, "") }

// end is End, why being EventPeerLeft's reason; "": LeftReason(code).
func (s *Session) end(code int, reason string, flush bool, why string) {
	s.mu.Lock()
	if s.IsEnded() {
		s.mu.Unlock()
		return
	}
	close(s.done) // under s.mu: once
	if why == "" {
		why = LeftReason(code)
	}
	s.why = why
	if s.away != nil {
		s.away.Stop()
	}
	s.comeBack()
	tr := s.tr
	s.mu.Unlock()
	if tr != nil {
		tr.Close(code, reason, flush)
		return
	}
	s.Leave()
}

// IsEnded reports whether the session is over.
func (s *Session) IsEnded() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Lost is called when transport t is gone without the session ending: the
// peer stays, away, for the resume window, unless it said goodbye (close
// 1000) or resume is off.
func (s *Session) Lost(t Transport, goodbye bool) {
	s.mu.Lock()
	if s.tr != t || s.IsEnded() {
		s.mu.Unlock()
		return
	}
	s.tr = nil
	window := s.cfg.ResumeWindow
	if goodbye || window <= 0 {
		s.mu.Unlock()
		why := ReasonLost
		if goodbye {
			why = ""
		}
		s.end(wire.CloseNormal, "", false, why)
		return
	}
	if s.out.awayFull(0) {
		// What waited for the connection is already more than an away
		// peer may be kept: it is not coming back to a usable state.
		s.overflowed = true
		s.mu.Unlock()
		s.cfg.Metrics.Resume("overflow")
		s.end(wire.CloseGoingAway, "away too long", false, ReasonLost)
		return
	}
	if !s.goAway() {
		s.mu.Unlock()
		s.cfg.Metrics.Resume("refused")
		s.end(wire.CloseNormal, "", false, ReasonLost)
		return
	}
	var timer *time.Timer
	timer = time.AfterFunc(window, func() {
		s.mu.Lock()
		expired := s.away == timer && s.tr == nil && !s.IsEnded()
		s.mu.Unlock()
		if expired {
			s.cfg.Metrics.Resume("expired")
			s.end(wire.CloseNormal, "", false, ReasonLost)
		}
	})
	s.away = timer
	s.mu.Unlock()
	s.cfg.Logger.Debug("peer away", zap.String("room", s.room), zap.String("peer", s.id))
}

// goAway takes a place among the away sessions of the peer's address,
// at most connections_per_ip of them; it reports false when there is
// none, and the session must end. The caller holds s.mu.
func (s *Session) goAway() bool {
	release, ok := s.cfg.Away.Acquire(s.ip, s.cfg.AwayPerAddr)
	if ok {
		s.awaySlot = release
	}
	return ok
}

// comeBack gives back the session's place among its address's away
// sessions, if it holds one; the caller holds s.mu.
func (s *Session) comeBack() {
	if s.awaySlot != nil {
		s.awaySlot()
		s.awaySlot = nil
	}
}

// Resume attaches transport t to the session for a peer that processed
// frames up to lastSeq and presented the token of generation gen. It
// returns the welcome that answers the Resume, to go out before the frames
// replayed, or nil when the session cannot Resume.
func (s *Session) Resume(t Transport, gen, lastSeq uint64, welcome func(members []wire.PeerInfo, token string, ack uint64) []byte) []byte {
	// Waits for a frame the old transport is handling, and keeps it from
	// handling more, so that ack is exact.
	s.inMu.Lock()
	defer s.inMu.Unlock()
	// Listed before the session's lock is taken: the hub takes its own
	// locks, under which it may send to peers. A change in between comes
	// after as a peer-joined or peer-left.
	members := s.cfg.Hub.Members(s.room, s.id)
	s.mu.Lock()
	if s.IsEnded() || gen != s.gen || !s.out.rewind(lastSeq) {
		s.mu.Unlock()
		return nil
	}
	s.gen++
	old := s.tr
	s.tr = t
	s.kind = kindOf(t, s.kind)
	s.comeBack()
	if s.away != nil {
		s.away.Stop()
		s.away = nil // should it have fired already, it finds itself replaced
	}
	w := welcome(members, Token(s.cfg.HubName, s.room, s.id, s.gen), s.inAck)
	s.mu.Unlock()
	if old != nil {
		old.Displace()
	}
	s.emit(EventPeerResumed, "")
	return w
}

// ResumeFrom attaches transport t to the session for a client that
// resumed through another server, r being that server's request (for the
// welcome's ICE servers); nil, counted as failed, when it cannot resume.
func (s *Session) ResumeFrom(t Transport, gen, lastSeq uint64, r *http.Request) []byte {
	w := s.Resume(t, gen, lastSeq, s.cfg.ResumedWelcome(s, r))
	if w == nil {
		s.cfg.Metrics.Resume("failed")
	}
	return w
}

// CurrentGen is the generation of the session's current token.
func (s *Session) CurrentGen() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// Receive acts on one frame from the peer, which came over transport t (nil
// for a frame POSTed outside any stream). The answer is a problem to report
// to the sender, or the zero verdict.
func (s *Session) Receive(t Transport, data []byte, text bool) Verdict {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if t != nil && !s.CarriedBy(t) {
		return Verdict{} // the session moved on to another transport
	}
	if s.IsEnded() {
		return Verdict{}
	}
	if v := s.gate.Admit(len(data), s.cfg); v.Code != "" {
		return v
	}
	return s.handle(data, text)
}

// CarriedBy reports whether t is the session's transport.
func (s *Session) CarriedBy(t Transport) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tr == t
}

// seen reports whether a frame numbered seq was processed already, and
// otherwise records it; the caller holds s.inMu.
func (s *Session) seen(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq <= s.inAck {
		return true
	}
	s.inAck = seq
	return false
}

// Reply sends the peer a verdict over its stream: an error frame, and the
// end of the session when it is fatal.
func (s *Session) Reply(v Verdict) {
	switch {
	case v.Code == "":
	case v.CloseCode != 0:
		s.Fatal(v.Code, v.Message, v.CloseCode)
	default:
		s.Send(wire.Error(v.Code, v.Message))
	}
}

// Verdict is a problem with a frame the peer sent: an error code and
// message, and a close code when the session ends over it.
type Verdict struct {
	Code, Message string
	CloseCode     int
}

// ParseLastSeq parses the last_seq query parameter.
func ParseLastSeq(v string) (uint64, bool) {
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// NewPeerID returns 128 random bits, URL-safe: unguessable, so a peer id
// can double as a capability to address that peer.
func NewPeerID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}
