package session

import (
	"bytes"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// heldTransport takes no frames, as a peer that reads nothing.
type heldTransport struct{}

func newHeldTransport() *heldTransport { return &heldTransport{} }

func (*heldTransport) Wake()                   {}
func (*heldTransport) Send()                   {}
func (*heldTransport) Displace()               {}
func (*heldTransport) Close(int, string, bool) {}

// testConfig is the config of sessions of a memory hub, resume on, with
// at most perIP sessions away per address (unlimited for 0).
func testConfig(perIP int) *Config {
	if perIP == 0 {
		perIP = 1 << 20
	}
	return &Config{
		HubName:         "session-test",
		Hub:             hub.NewMemoryHub(),
		Logger:          zap.NewNop(),
		Metrics:         nopMetrics{},
		MaxMessageSize:  64 << 10,
		FramesPerSecond: 20,
		Burst:           100,
		ResumeWindow:    time.Minute,
		Sessions:        NewRegistry("session-test"),
		Away:            new(AddrSlots),
		AwayPerAddr:     perIP,
	}
}

// nopMetrics counts nothing.
type nopMetrics struct{}

func (nopMetrics) FrameIn(string, int) {}
func (nopMetrics) FrameOut([]byte)     {}
func (nopMetrics) Resume(string)       {}
func (nopMetrics) Left()               {}
func (nopMetrics) SlowDropped()        {}
func (nopMetrics) RateLimited()        {}

// joined is a session of cfg in room, carried by t, member of the hub.
func joined(tb testing.TB, cfg *Config, room, ip string, t Transport) *Session {
	tb.Helper()
	s := New(cfg, room, wire.PeerInfo{}, ip, t)
	if _, err := s.Join(hub.JoinRequest{Welcome: func([]wire.PeerInfo) []byte { return []byte(`{"type":"welcome"}`) }}); err != nil {
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
	got := o.take(make([]Frame, 0, 4), MaxBatch)
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
	cfg := testConfig(0)
	tr := newHeldTransport()
	s := joined(t, cfg, "try", "192.0.2.1", tr)
	frame := bytes.Repeat([]byte("y"), 1000)
	queued := 1 // the welcome
	start := time.Now()
	for ; s.TrySend(frame); queued++ {
		start = time.Now()
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("TrySend waited %v", took)
	}
	if queued != SendQueueSize {
		t.Fatalf("refused a frame with %d queued, want %d", queued, SendQueueSize)
	}
	if s.IsEnded() {
		t.Fatal("a frame TrySend could not queue ended the session")
	}
}

// A peer whose connection is lost while more waits for it than an away
// peer may hold is dropped at once, not on the next frame.
func TestAPeerLostWithTooMuchWaitingIsDropped(t *testing.T) {
	cfg := testConfig(0)
	tr := newHeldTransport()
	s := joined(t, cfg, "lost", "192.0.2.1", tr)
	for range SendQueueSize {
		s.TrySend([]byte(`{"type":"x"}`))
	}
	s.Lost(tr, false)
	if !s.IsEnded() {
		t.Fatal("the session is away with a full queue")
	}
}

// An address holds at most connections_per_ip sessions away; a session
// lost beyond that ends at once, and a resume gives its place back.
func TestAwaySessionsAreCappedPerAddress(t *testing.T) {
	cfg := testConfig(2)
	var ss []*Session
	var trs []*heldTransport
	for range 3 {
		tr := newHeldTransport()
		trs = append(trs, tr)
		ss = append(ss, joined(t, cfg, "away", "192.0.2.7", tr))
	}
	other := joined(t, cfg, "away", "192.0.2.8", newHeldTransport())
	for i, s := range ss {
		s.Lost(trs[i], false)
	}
	if ss[0].IsEnded() || ss[1].IsEnded() || !ss[2].IsEnded() {
		t.Fatalf("ended: %v %v %v; want only the third, beyond the cap of 2", ss[0].IsEnded(), ss[1].IsEnded(), ss[2].IsEnded())
	}
	otherTr := newHeldTransport()
	other.tr = otherTr
	other.Lost(otherTr, false)
	if other.IsEnded() {
		t.Fatal("another address's session was refused its away place")
	}
	// A resume gives the place back: the next lost session may go away.
	w := ss[0].Resume(newHeldTransport(), ss[0].CurrentGen(), 0, func([]wire.PeerInfo, string, uint64) []byte { return []byte("{}") })
	if w == nil {
		t.Fatal("resume failed")
	}
	tr := newHeldTransport()
	s := joined(t, cfg, "away", "192.0.2.7", tr)
	s.Lost(tr, false)
	if s.IsEnded() {
		t.Fatal("a session lost after a resume freed a place was refused")
	}
	for _, s := range append(ss, other, s) {
		s.End(wire.CloseNormal, "", false)
	}
	cfg.Away.mu.Lock()
	defer cfg.Away.mu.Unlock()
	if n := cfg.Away.count["192.0.2.7"]; n != 0 {
		t.Fatalf("%d away places still taken after every session ended", n)
	}
}
