package signaling

import (
	"bytes"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// heldTransport takes no frames, as a peer that reads nothing.
type heldTransport struct{}

func newHeldTransport() *heldTransport { return &heldTransport{} }

func (*heldTransport) wake()                   {}
func (*heldTransport) send()                   {}
func (*heldTransport) displace()               {}
func (*heldTransport) close(int, string, bool) {}

// sessionHandler is a handler with a memory hub, resume on, and at most
// perIP connections per address.
func sessionHandler(perIP int) *Handler {
	window := caddy.Duration(time.Minute)
	h := &Handler{
		Hub:            "session-test",
		MaxMessageSize: DefaultMaxMessageSize,
		ResumeWindow:   &window,
		Limits:         Limits{ConnectionsPerIP: perIP}.withDefaults(),
		metrics:        newHubMetrics("session-test"),
		logger:         zap.NewNop(),
	}
	h.useHub(hub.NewMemoryHub(), newHubState(h.Hub))
	return h
}

// joined is a session of h in room, carried by t, member of the hub.
func joined(tb testing.TB, h *Handler, room, ip string, t transport) *session {
	tb.Helper()
	s := newSession(h.sessCfg, room, wire.PeerInfo{})
	s.ip, s.tr = ip, t
	if _, err := h.hub.Join(room, s, hub.JoinRequest{Welcome: func([]wire.PeerInfo) []byte { return []byte(`{"type":"welcome"}`) }}); err != nil {
		tb.Fatal(err)
	}
	return s
}

// A connected peer's queue is bounded in bytes as well as frames: frames
// of 64 KiB fill it long before 256 of them do. An empty queue takes any
// one frame, however large.
func TestTheQueueIsBoundedInBytes(t *testing.T) {
	var o outbox
	big := bytes.Repeat([]byte("x"), 64<<10)
	n := 0
	for !o.queueFull(len(big)) {
		o.push(big)
		n++
	}
	if want := queueBytes / len(big); n != want {
		t.Fatalf("took %d frames of 64 KiB, want %d", n, want)
	}
	if o.pendingBytes() != n*len(big) {
		t.Fatalf("counts %d bytes waiting, holds %d", o.pendingBytes(), n*len(big))
	}
	got := o.take(make([]outFrame, 0, 4), maxBatch)
	if o.pendingBytes() != (n-len(got))*len(big) {
		t.Fatalf("after taking %d: counts %d bytes waiting", len(got), o.pendingBytes())
	}
	if var0 := new(outbox); var0.queueFull(2 * queueBytes) {
		t.Fatal("an empty queue refuses a frame")
	}
}

// TrySend never waits and never drops: a frame to a full queue is not
// queued, and the peer stays.
func TestTrySendQueuesOnlyWhatFits(t *testing.T) {
	h := sessionHandler(0)
	tr := newHeldTransport()
	s := joined(t, h, "try", "192.0.2.1", tr)
	frame := bytes.Repeat([]byte("y"), 1000)
	queued := 1 // the welcome
	start := time.Now()
	for ; s.TrySend(frame); queued++ {
		start = time.Now()
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("TrySend waited %v", took)
	}
	if queued != sendQueueSize {
		t.Fatalf("refused a frame with %d queued, want %d", queued, sendQueueSize)
	}
	if s.isEnded() {
		t.Fatal("a frame TrySend could not queue ended the session")
	}
}

// A peer whose connection is lost while more waits for it than an away
// peer may hold is dropped at once, not on the next frame.
func TestAPeerLostWithTooMuchWaitingIsDropped(t *testing.T) {
	h := sessionHandler(0)
	tr := newHeldTransport()
	s := joined(t, h, "lost", "192.0.2.1", tr)
	for range sendQueueSize {
		s.TrySend([]byte(`{"type":"x"}`))
	}
	s.lost(tr, false)
	if !s.isEnded() {
		t.Fatal("the session is away with a full queue")
	}
}

// An address holds at most connections_per_ip sessions away; a session
// lost beyond that ends at once, and a resume gives its place back.
func TestAwaySessionsAreCappedPerAddress(t *testing.T) {
	h := sessionHandler(2)
	var ss []*session
	var trs []*heldTransport
	for range 3 {
		tr := newHeldTransport()
		trs = append(trs, tr)
		ss = append(ss, joined(t, h, "away", "192.0.2.7", tr))
	}
	other := joined(t, h, "away", "192.0.2.8", newHeldTransport())
	for i, s := range ss {
		s.lost(trs[i], false)
	}
	if ss[0].isEnded() || ss[1].isEnded() || !ss[2].isEnded() {
		t.Fatalf("ended: %v %v %v; want only the third, beyond the cap of 2", ss[0].isEnded(), ss[1].isEnded(), ss[2].isEnded())
	}
	otherTr := newHeldTransport()
	other.tr = otherTr
	other.lost(otherTr, false)
	if other.isEnded() {
		t.Fatal("another address's session was refused its away place")
	}
	// A resume gives the place back: the next lost session may go away.
	w := ss[0].resume(newHeldTransport(), ss[0].currentGen(), 0, func([]wire.PeerInfo, string, uint64) []byte { return []byte("{}") })
	if w == nil {
		t.Fatal("resume failed")
	}
	tr := newHeldTransport()
	s := joined(t, h, "away", "192.0.2.7", tr)
	s.lost(tr, false)
	if s.isEnded() {
		t.Fatal("a session lost after a resume freed a place was refused")
	}
	for _, s := range append(ss, other, s) {
		s.end(wire.CloseNormal, "", false)
	}
	h.state.away.mu.Lock()
	defer h.state.away.mu.Unlock()
	if n := h.state.away.count["192.0.2.7"]; n != 0 {
		t.Fatalf("%d away places still taken after every session ended", n)
	}
}
