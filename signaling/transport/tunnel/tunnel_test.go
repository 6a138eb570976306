package tunnel

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// The tunnel's two ends are tested on sessions of memory hubs, with no
// handler: a home config holds the sessions, a front config's hub opens
// tunnels through an in-process pipe to Accept on the home's registry.

const (
	testRoom    = "room"
	testMaxSize = 1024
	waitFor     = 5 * time.Second
)

// testMetrics counts the peers that left, which a test waits for.
type testMetrics struct{ left chan struct{} }

func (m *testMetrics) FrameIn(string, int) {}
func (m *testMetrics) FrameOut([]byte)     {}
func (m *testMetrics) Resume(string)       {}
func (m *testMetrics) Left()               { m.left <- struct{}{} }
func (m *testMetrics) SlowDropped()        {}
func (m *testMetrics) RateLimited()        {}

// server is one server's config: its hub, registry and counters.
type server struct {
	cfg     *session.Config
	metrics *testMetrics
}

// newServer makes a server named name on h (a memory hub if nil), with a
// resume window of window.
func newServer(t *testing.T, name string, h hub.Hub, window time.Duration) *server {
	t.Helper()
	if h == nil {
		h = hub.NewMemoryHub()
	}
	t.Cleanup(h.Shutdown)
	m := &testMetrics{left: make(chan struct{}, 16)}
	return &server{metrics: m, cfg: &session.Config{
		HubName:         name,
		Hub:             h,
		Logger:          zap.NewNop(),
		Metrics:         m,
		MaxMessageSize:  testMaxSize,
		FramesPerSecond: 1e9,
		Burst:           1e9,
		ResumeWindow:    window,
		Sessions:        session.NewRegistry(name),
		Away:            &session.AddrSlots{},
		AwayPerAddr:     1 << 30,
		ResumedWelcome: func(s *session.Session, r *http.Request) func([]wire.PeerInfo, string, uint64) []byte {
			return func(_ []wire.PeerInfo, token string, _ uint64) []byte {
				return wire.Encode(map[string]any{"type": "welcome", "resumed": true, "host": r.Host, "resume": token})
			}
		},
	}}
}

// join makes a session of srv in testRoom, carried by a transport that
// writes nothing (its client is gone), and returns it with its token.
func (srv *server) join(t *testing.T) (*session.Session, string) {
	t.Helper()
	s := session.New(srv.cfg, testRoom, wire.PeerInfo{}, "192.0.2.1", heldTransport{})
	welcome := func([]wire.PeerInfo) []byte { return []byte(`{"type":"welcome"}`) }
	if _, err := s.Join(hub.JoinRequest{Welcome: welcome}); err != nil {
		t.Fatal(err)
	}
	return s, session.Token(srv.cfg.HubName, testRoom, s.ID(), 0)
}

// waitLeft waits for a session of srv to leave its room.
func (srv *server) waitLeft(t *testing.T) {
	t.Helper()
	receive(t, srv.metrics.left, "the session did not leave its room")
}

// receive is the next value of ch, which must come within waitFor.
func receive[T any](t *testing.T, ch <-chan T, missing string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatal(missing)
		var zero T
		return zero
	}
}

// heldTransport writes nothing.
type heldTransport struct{}

func (heldTransport) Wake()                   {}
func (heldTransport) Send()                   {}
func (heldTransport) Displace()               {}
func (heldTransport) Close(int, string, bool) {}

// closing is a tunnel's close as a recorder saw it.
type closing struct {
	code   int
	reason string
}

// recTunnel records what goes through a tunnel, for the test to receive.
type recTunnel struct {
	frames chan []byte
	closed chan closing
}

func newRecTunnel() *recTunnel {
	return &recTunnel{frames: make(chan []byte, 64), closed: make(chan closing, 4)}
}

func (r *recTunnel) Send(frame []byte)             { r.frames <- frame }
func (r *recTunnel) Close(code int, reason string) { r.closed <- closing{code, reason} }

// next is the next frame sent.
func (r *recTunnel) next(t *testing.T) string {
	t.Helper()
	return string(receive(t, r.frames, "no frame came through the tunnel"))
}

// expect checks that the next frames sent are want, in order.
func (r *recTunnel) expect(t *testing.T, want ...string) {
	t.Helper()
	for i, w := range want {
		if got := r.next(t); got != w {
			t.Fatalf("frame %d = %s, want %s", i, got, w)
		}
	}
}

// waitClosed is the tunnel's close.
func (r *recTunnel) waitClosed(t *testing.T) closing {
	t.Helper()
	return receive(t, r.closed, "the tunnel was not closed")
}

// request is a front's request, encoded.
func request(token string, lastSeq uint64) []byte {
	return wire.Encode(Request{Room: testRoom, Token: token, LastSeq: lastSeq, Host: "front.example"})
}

// resumedWelcome is the welcome the home's ResumedWelcome renders.
func resumedWelcome(t *testing.T, frame string) map[string]any {
	t.Helper()
	var w map[string]any
	if err := json.Unmarshal([]byte(frame), &w); err != nil || w["type"] != "welcome" || w["resumed"] != true {
		t.Fatalf("first frame %s is not the resumed welcome (%v)", frame, err)
	}
	return w
}

func TestAcceptRefusesWhatItCannotResume(t *testing.T) {
	home := newServer(t, "home", nil, time.Minute)
	_, token := home.join(t)
	other := newServer(t, "other", nil, time.Minute)
	_, foreign := other.join(t) // genuine, but not of home's hub
	for name, req := range map[string][]byte{
		"malformed":         []byte(`{"room":`),
		"unknown token":     request("nobody.0.AAAAAAAAAAAAAAAAAAAAAA", 0),
		"another hub's":     request(foreign, 0),
		"another room":      wire.Encode(Request{Room: "elsewhere", Token: token}),
		"last_seq too high": request(token, 5),
	} {
		back := newRecTunnel()
		if end := Accept(home.cfg.Sessions)(req, back); end != nil {
			t.Errorf("%s: accepted", name)
		}
		if c := back.waitClosed(t); c != (closing{wire.CloseNormal, wire.CodeResumeFailed}) {
			t.Errorf("%s: closed with %v", name, c)
		}
		if len(back.frames) != 0 {
			t.Errorf("%s: %d frames sent", name, len(back.frames))
		}
	}
}

// accepted resumes a session of a new home through a recorded tunnel.
func accepted(t *testing.T, window time.Duration) (*server, *session.Session, hub.TunnelEnd, *recTunnel) {
	t.Helper()
	home := newServer(t, "home", nil, window)
	s, token := home.join(t)
	back := newRecTunnel()
	end := Accept(home.cfg.Sessions)(request(token, 0), back)
	if end == nil {
		t.Fatal("refused")
	}
	return home, s, end, back
}

func TestAcceptResumesWelcomeFirstThenTheSessionsFramesInOrder(t *testing.T) {
	home := newServer(t, "home", nil, time.Minute)
	s, token := home.join(t)
	s.Send([]byte(`{"type":"x","n":1}`)) // missed while away
	back := newRecTunnel()
	end := Accept(home.cfg.Sessions)(request(token, 0), back)
	if end == nil {
		t.Fatal("refused")
	}
	w := resumedWelcome(t, back.next(t))
	if w["host"] != "front.example" {
		t.Errorf("welcome for host %v, want the front's request's", w["host"])
	}
	if got := home.cfg.Sessions.Current(w["resume"].(string)); got != s {
		t.Errorf("the welcome's token names %v, want the session", got)
	}
	back.expect(t, `{"seq":1,"type":"welcome"}`, `{"seq":2,"type":"x","n":1}`)
	s.Send([]byte(`{"type":"x","n":2}`))
	s.Send([]byte(`{"type":"x","n":3}`))
	back.expect(t, `{"seq":3,"type":"x","n":2}`, `{"seq":4,"type":"x","n":3}`)
	if !s.CarriedBy(end.(session.Transport)) {
		t.Error("the session is not carried by the tunnel")
	}
}

func TestAFrameFromTheFrontReachesTheSession(t *testing.T) {
	_, _, end, back := accepted(t, time.Minute)
	back.next(t) // the resumed welcome
	back.expect(t, `{"seq":1,"type":"welcome"}`)
	end.Frame([]byte(`{"type":"ping"}`))
	back.expect(t, `{"seq":2,"type":"pong"}`)
	// A problem with a frame is answered through the tunnel too.
	end.Frame([]byte(`{"type":"nonsense"}`))
	if got := back.next(t); !strings.Contains(got, `"code":"bad_message"`) {
		t.Errorf("answer to an unknown type: %s", got)
	}
}

func TestTheFrontSayingGoodbyeEndsTheSession(t *testing.T) {
	home, s, end, _ := accepted(t, time.Minute)
	end.Closed(wire.CloseNormal, "")
	home.waitLeft(t)
	if !s.IsEnded() {
		t.Error("the session goes on")
	}
	if got := home.cfg.Hub.Stats().Peers; got != 0 {
		t.Errorf("%d peers in the hub, want 0", got)
	}
}

func TestALostFrontLeavesTheSessionAway(t *testing.T) {
	home, s, end, back := accepted(t, time.Minute)
	token := resumedWelcome(t, back.next(t))["resume"].(string)
	back.expect(t, `{"seq":1,"type":"welcome"}`)
	end.Closed(wire.CloseAbnormal, "")
	if s.IsEnded() {
		t.Fatal("the session ended")
	}
	if n := home.cfg.Sessions.Away(); n != 1 {
		t.Errorf("%d sessions away, want 1", n)
	}
	if got := home.cfg.Hub.Stats().Peers; got != 1 {
		t.Errorf("%d peers in the hub, want 1", got)
	}
	// It resumes again, through another tunnel, with the welcome's token.
	again := newRecTunnel()
	if Accept(home.cfg.Sessions)(request(token, 1), again) == nil {
		t.Fatal("the away session did not resume")
	}
	resumedWelcome(t, again.next(t))
}

func TestASecondResumeDisplacesTheFirstTunnel(t *testing.T) {
	home, s, first, back := accepted(t, time.Minute)
	token := resumedWelcome(t, back.next(t))["resume"].(string)
	back.expect(t, `{"seq":1,"type":"welcome"}`)
	again := newRecTunnel()
	second := Accept(home.cfg.Sessions)(request(token, 1), again)
	if second == nil {
		t.Fatal("the second resume was refused")
	}
	back.expect(t, string(wire.Replaced()))
	if got := back.waitClosed(t); got != (closing{wire.CloseReplaced, wire.CodeReplaced}) {
		t.Errorf("first tunnel closed with %v", got)
	}
	resumedWelcome(t, again.next(t))
	if !s.CarriedBy(second.(session.Transport)) || s.CarriedBy(first.(session.Transport)) {
		t.Error("the session is not carried by the second tunnel alone")
	}
	// The first front's late close does not touch the session.
	first.Closed(wire.CloseNormal, "")
	if s.IsEnded() {
		t.Error("the displaced tunnel's close ended the session")
	}
}

func TestTheFrontEndingTheClientEndsTheSession(t *testing.T) {
	home, s, end, _ := accepted(t, time.Minute)
	end.Closed(wire.CloseTooLarge, wire.CodeTooLarge)
	home.waitLeft(t)
	if !s.IsEnded() {
		t.Error("the session goes on")
	}
	if n := home.cfg.Sessions.Away(); n != 0 {
		t.Errorf("%d sessions away, want 0", n)
	}
}

// recClient records what Link.Pass answers its client.
type recClient struct {
	says  [][]byte
	fails []string
	codes []int
}

func (c *recClient) Say(frame []byte) { c.says = append(c.says, frame) }
func (c *recClient) Fail(code, _ string, closeCode int) {
	c.fails = append(c.fails, code)
	c.codes = append(c.codes, closeCode)
}

// newLink is a front's link on a recorded tunnel, with srv's limits.
func newLink(srv *server) (*Link, *recTunnel, *recClient) {
	tun := newRecTunnel()
	return &Link{tun: tun, cfg: srv.cfg}, tun, &recClient{}
}

func TestPassSendsAFrameWithinTheLimitsCopied(t *testing.T) {
	link, tun, c := newLink(newServer(t, "front", nil, 0))
	frame := []byte(`{"type":"ping"}`)
	link.Pass(c, true, frame)
	copy(frame, "XXXXXXXXXXXXXXX") // the caller's buffer is reused
	tun.expect(t, `{"type":"ping"}`)
	if len(c.says)+len(c.fails) != 0 || len(tun.closed) != 0 {
		t.Errorf("answered %q, failed %v, tunnel closed: %d", c.says, c.fails, len(tun.closed))
	}
	link.Close(wire.CloseNormal, "bye")
	if got := tun.waitClosed(t); got != (closing{wire.CloseNormal, "bye"}) {
		t.Errorf("link closed the tunnel with %v", got)
	}
}

func TestPassClosesTheTunnelOnAFrameTooLarge(t *testing.T) {
	link, tun, c := newLink(newServer(t, "front", nil, 0))
	link.Pass(c, true, bytes.Repeat([]byte("x"), testMaxSize+1))
	if got := tun.waitClosed(t); got != (closing{wire.CloseTooLarge, wire.CodeTooLarge}) {
		t.Errorf("tunnel closed with %v", got)
	}
	if len(c.fails) != 1 || c.fails[0] != wire.CodeTooLarge || c.codes[0] != wire.CloseTooLarge {
		t.Errorf("client failed with %v %v, want too_large 4413", c.fails, c.codes)
	}
	if len(tun.frames) != 0 {
		t.Error("the frame went through")
	}
}

func TestPassRefusesABinaryFrame(t *testing.T) {
	link, tun, c := newLink(newServer(t, "front", nil, 0))
	link.Pass(c, false, []byte(`{"type":"ping"}`))
	if len(c.says) != 1 || !bytes.Contains(c.says[0], []byte(`"code":"bad_message"`)) {
		t.Errorf("client told %q, want a bad_message error", c.says)
	}
	if len(tun.frames) != 0 || len(tun.closed) != 0 || len(c.fails) != 0 {
		t.Error("the binary frame went through, or ended the tunnel")
	}
}

// pipeHub is a memory hub whose tunnels reach accept in process.
type pipeHub struct {
	*hub.MemoryHub
	accept func([]byte, hub.Tunnel) hub.TunnelEnd
	opened atomic.Int32
	homes  chan hub.Tunnel // the home's side of each tunnel opened
}

func newPipeHub(accept func([]byte, hub.Tunnel) hub.TunnelEnd) *pipeHub {
	return &pipeHub{MemoryHub: hub.NewMemoryHub(), accept: accept, homes: make(chan hub.Tunnel, 4)}
}

// OpenTunnel implements hub.Tunnels.
func (p *pipeHub) OpenTunnel(_, _ string, request []byte, front hub.TunnelEnd) (hub.Tunnel, error) {
	p.opened.Add(1)
	tp := &pipe{toFront: make(chan pipeEvent, 256), toHome: make(chan pipeEvent, 256)}
	go deliver(tp.toFront, front)
	back := &pipeSide{p: tp, out: tp.toFront, in: tp.toHome}
	p.homes <- back
	if end := p.accept(request, back); end != nil {
		go deliver(tp.toHome, end)
	}
	return &pipeSide{p: tp, out: tp.toHome, in: tp.toFront}, nil
}

// AcceptTunnels implements hub.Tunnels.
func (p *pipeHub) AcceptTunnels(func([]byte, hub.Tunnel) hub.TunnelEnd) {}

// pipe is one tunnel: each direction's events are delivered in order on a
// goroutine of their own, and the first close ends both.
type pipe struct {
	mu              sync.Mutex
	closed          bool
	toFront, toHome chan pipeEvent
}

// pipeEvent is a frame, or the close.
type pipeEvent struct {
	frame  []byte
	closed bool
	code   int
	reason string
}

// pipeSide is one side's hub.Tunnel.
type pipeSide struct {
	p       *pipe
	out, in chan pipeEvent
}

func (s *pipeSide) Send(frame []byte) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if !s.p.closed {
		s.out <- pipeEvent{frame: frame}
	}
}

func (s *pipeSide) Close(code int, reason string) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if !s.p.closed {
		s.p.closed = true
		s.out <- pipeEvent{closed: true, code: code, reason: reason}
		close(s.out)
		close(s.in) // the closing side is not told
	}
}

func deliver(events <-chan pipeEvent, end hub.TunnelEnd) {
	for e := range events {
		if e.closed {
			end.Closed(e.code, e.reason)
			return
		}
		end.Frame(e.frame)
	}
}

// recFront records what a front connection is told.
type recFront struct {
	relayed   chan []byte
	ended     chan closing
	forwarded chan *Link
}

func newRecFront() *recFront {
	return &recFront{relayed: make(chan []byte, 64), ended: make(chan closing, 4), forwarded: make(chan *Link, 1)}
}

func (f *recFront) Relay(frame []byte)               { f.relayed <- frame }
func (f *recFront) EndFront(code int, reason string) { f.ended <- closing{code, reason} }
func (f *recFront) Forward(link *Link)               { f.forwarded <- link }

// nextRelayed is the next frame relayed to the front's client.
func (f *recFront) nextRelayed(t *testing.T) string {
	t.Helper()
	return string(receive(t, f.relayed, "nothing relayed"))
}

// pair is a home and a front whose hub tunnels to the home.
func pair(t *testing.T) (home, front *server, ph *pipeHub) {
	t.Helper()
	home = newServer(t, "home", nil, time.Minute)
	ph = newPipeHub(Accept(home.cfg.Sessions))
	front = newServer(t, "front", ph, time.Minute)
	return home, front, ph
}

func TestResumeRefusesWhatItNeedNotAsk(t *testing.T) {
	home, front, ph := pair(t)
	_, token := home.join(t)
	for name, c := range map[string]struct{ token, lastSeq string }{
		"token without id": {"." + token, "0"},
		"token too long":   {token + strings.Repeat("x", session.MaxSessionTokenLen), "0"},
		"last_seq":         {token, "x"},
	} {
		f := newRecFront()
		if Resume(front.cfg, f, testRoom, c.token, c.lastSeq, "front.example") {
			t.Errorf("%s: resumed", name)
		}
		if len(f.forwarded) != 0 {
			t.Errorf("%s: forwarded", name)
		}
	}
	if n := ph.opened.Load(); n != 0 {
		t.Errorf("%d tunnels opened, want none", n)
	}
}

func TestResumeNeedsAHubWithTunnels(t *testing.T) {
	home := newServer(t, "home", nil, time.Minute)
	_, token := home.join(t)
	front := newServer(t, "home", nil, time.Minute)
	if Resume(front.cfg, newRecFront(), testRoom, token, "0", "front.example") {
		t.Error("resumed over a hub without tunnels")
	}
}

func TestResumeLeavesASessionLivingHere(t *testing.T) {
	// The front's hub would tunnel to its own sessions: a session found
	// here could not resume here, and is not asked for elsewhere.
	front := newServer(t, "front", nil, time.Minute)
	ph := newPipeHub(Accept(front.cfg.Sessions))
	front.cfg.Hub = ph
	t.Cleanup(ph.Shutdown)
	_, token := front.join(t)
	if Resume(front.cfg, newRecFront(), testRoom, token, "0", "front.example") {
		t.Error("resumed a session of its own through a tunnel")
	}
	if n := ph.opened.Load(); n != 0 {
		t.Errorf("%d tunnels opened, want none", n)
	}
}

func TestResumeThroughATunnelForwardsTheClient(t *testing.T) {
	home, front, ph := pair(t)
	s, token := home.join(t)
	f := newRecFront()
	if !Resume(front.cfg, f, testRoom, token, "0", "front.example") {
		t.Fatal("not resumed")
	}
	var link *Link
	select {
	case link = <-f.forwarded:
	default:
		t.Fatal("the client was not forwarded")
	}
	if w := resumedWelcome(t, f.nextRelayed(t)); w["host"] != "front.example" {
		t.Errorf("welcome for host %v", w["host"])
	}
	if got := f.nextRelayed(t); got != `{"seq":1,"type":"welcome"}` {
		t.Errorf("relayed %s, want the session's first frame", got)
	}
	// The client's frames reach the session, and its answers come back.
	link.Pass(&recClient{}, true, []byte(`{"type":"ping"}`))
	if got := f.nextRelayed(t); got != `{"seq":2,"type":"pong"}` {
		t.Errorf("relayed %s, want the pong", got)
	}
	// The home gone, the client is told to resume again.
	(<-ph.homes).Close(wire.CloseAbnormal, "")
	if c := receive(t, f.ended, "the front was not ended"); c.code != wire.CloseGoingAway {
		t.Errorf("front ended with %d, want 1001", c.code)
	}
	if s.IsEnded() {
		t.Error("the session ended with its tunnel")
	}
}

func TestResumeFailsWhenTheHomeClosesFirst(t *testing.T) {
	_, front, ph := pair(t)
	f := newRecFront()
	if Resume(front.cfg, f, testRoom, "nobody.0.AAAAAAAAAAAAAAAAAAAAAA", "0", "front.example") {
		t.Error("resumed a session the home does not hold")
	}
	if n := ph.opened.Load(); n != 1 {
		t.Errorf("%d tunnels opened, want 1", n)
	}
	if len(f.forwarded)+len(f.ended)+len(f.relayed) != 0 {
		t.Error("the front was told something")
	}
}

// answered is a frontEnd that had the home's first frame.
func answered(t *testing.T) (*frontEnd, *recFront) {
	t.Helper()
	f := newRecFront()
	fe := &frontEnd{c: f, answered: make(chan bool, 1)}
	fe.Frame([]byte(`{"type":"welcome"}`))
	if !fe.settle(<-fe.answered) {
		t.Fatal("a frame did not settle the resume")
	}
	if got := f.nextRelayed(t); got != `{"type":"welcome"}` {
		t.Fatalf("relayed %s", got)
	}
	return fe, f
}

func TestFrontEndTellsTheClientToResumeWhenTheHomeIsLost(t *testing.T) {
	for _, c := range []struct{ code, want int }{
		{wire.CloseAbnormal, wire.CloseGoingAway},
		{0, wire.CloseGoingAway},
		{wire.CloseNormal, wire.CloseNormal},
		{wire.CloseTooLarge, wire.CloseTooLarge},
	} {
		fe, f := answered(t)
		fe.Closed(c.code, "why")
		if got := <-f.ended; got != (closing{c.want, "why"}) {
			t.Errorf("closed with %d: front ended with %v, want %d", c.code, got, c.want)
		}
	}
}

func TestFrontEndClosedBeforeAFrameFailsTheResume(t *testing.T) {
	f := newRecFront()
	fe := &frontEnd{c: f, answered: make(chan bool, 1)}
	fe.Closed(wire.CloseNormal, wire.CodeResumeFailed)
	if fe.settle(<-fe.answered) {
		t.Error("the resume stands")
	}
	fe.Frame([]byte(`{"type":"late"}`))
	if len(f.relayed)+len(f.ended) != 0 {
		t.Error("the front was told something")
	}
}

func TestFrontEndGivenUpIgnoresALateAnswer(t *testing.T) {
	f := newRecFront()
	fe := &frontEnd{c: f, answered: make(chan bool, 1)}
	if fe.settle(false) { // the wait ran out
		t.Fatal("the resume stands")
	}
	fe.Frame([]byte(`{"type":"welcome"}`))
	fe.Closed(wire.CloseAbnormal, "")
	if len(f.relayed)+len(f.ended)+len(fe.answered) != 0 {
		t.Error("a late answer went through")
	}
}
