package natshub

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyproc"
	"github.com/caddy-webrtc/caddy-webrtc/internal/natstest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/natshub/link"
)

// The cases of issue 10's section 2 through real Caddy processes
// (./cmd/caddy, built once per test binary) and real WebSocket clients.

func TestMain(m *testing.M) {
	code := m.Run()
	caddyproc.RemoveBinary()
	os.Exit(code)
}

// caddyConf is the signaling route of one Caddy process.
type caddyConf struct {
	urls     []string // NATS URLs; none: the memory backend
	prefix   string
	maxPeers int    // 0: the default
	extra    string // more lines of the backend block
	// nodeTimeout is node_timeout; 0: testNodeTimeout.
	nodeTimeout time.Duration
}

// natsConf is a route on the NATS at url under prefix.
func natsConf(prefix string, maxPeers int, urls ...string) caddyConf {
	return caddyConf{urls: urls, prefix: prefix, maxPeers: maxPeers}
}

// startCaddy runs a Caddy process serving c at ws://127.0.0.1:<port>/ws,
// with limits that do not get in a test's way.
func startCaddy(t testing.TB, c caddyConf) *caddyproc.Proc {
	t.Helper()
	var route strings.Builder
	if c.maxPeers > 0 {
		fmt.Fprintf(&route, "\t\tmax_peers %d\n", c.maxPeers)
	}
	route.WriteString("\t\tlimits {\n\t\t\tframes_per_second 100000\n\t\t\tburst 100000\n\t\t\tconnections_per_ip 100000\n\t\t}\n")
	if c.nodeTimeout == 0 {
		c.nodeTimeout = testNodeTimeout
	}
	if len(c.urls) > 0 {
		fmt.Fprintf(&route, "\t\tbackend nats {\n\t\t\turl %s\n\t\t\tprefix %s\n\t\t\tnode_timeout %s\n%s\t\t}\n",
			strings.Join(c.urls, " "), c.prefix, c.nodeTimeout, c.extra)
	}
	return caddyproc.Start(t, func(port int) string {
		return fmt.Sprintf("http://127.0.0.1:%d {\n\tbind 127.0.0.1\n\twebrtc_signaling /ws* {\n%s\t}\n}\n", port, route.String())
	})
}

// twoCaddies runs two Caddy processes on one NATS, with a fresh prefix.
func twoCaddies(t testing.TB, natsURL string, maxPeers int) (*caddyproc.Proc, *caddyproc.Proc) {
	t.Helper()
	c := natsConf(fmt.Sprint("proc", prefixes.Add(1)), maxPeers, natsURL)
	return startCaddy(t, c), startCaddy(t, c)
}

// wsURL is the signaling URL of room on p.
func wsURL(p *caddyproc.Proc, room string) string {
	return fmt.Sprintf("ws://%s/ws?room=%s", p.Addr(), room)
}

// dialRaw connects to room on p, closed when the test ends.
func dialRaw(t testing.TB, p *caddyproc.Proc, room string) (*websocket.Conn, error) {
	c, _, err := websocket.DefaultDialer.Dial(wsURL(p, room), nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c, nil
}

// client is one signaling peer.
type client struct {
	t  testing.TB
	c  *websocket.Conn
	id string
	// peers are the ids its welcome listed.
	peers []string
}

// join connects to room on p and reads the welcome.
func join(t testing.TB, p *caddyproc.Proc, room string) *client {
	t.Helper()
	c, err := dialRaw(t, p, room)
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{t: t, c: c}
	w := cl.expect("welcome")
	cl.id = w.ID
	for _, m := range w.Peers {
		cl.peers = append(cl.peers, m.ID)
	}
	return cl
}

// joinEventually joins room on p once the server admits peers (it answers
// `unavailable` while its NATS is not ready), and returns how long that
// took.
func joinEventually(t testing.TB, p *caddyproc.Proc, room string, within time.Duration) (*client, time.Duration) {
	t.Helper()
	start := time.Now()
	var cl *client
	eventually(t, within, "a server admitting a peer", func() bool {
		c, err := dialRaw(t, p, room)
		if err != nil {
			return false
		}
		var f wireFrame
		if c.ReadJSON(&f) != nil || f.Type != "welcome" {
			c.Close()
			return false
		}
		cl = &client{t: t, c: c, id: f.ID}
		for _, m := range f.Peers {
			cl.peers = append(cl.peers, m.ID)
		}
		return true
	})
	return cl, time.Since(start)
}

type wireFrame struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	From  string          `json:"from"`
	Code  string          `json:"code"`
	Data  json.RawMessage `json:"data"`
	Peers []struct {
		ID string `json:"id"`
	} `json:"peers"`
}

// first reads the first frame of a new connection: welcome or an error.
func first(c *websocket.Conn) (wireFrame, error) {
	var f wireFrame
	err := c.ReadJSON(&f)
	return f, err
}

// readWait bounds each read of a frame a test expects.
const readWait = 15 * time.Second

// expect reads frames until one of type typ, failing on any other but
// pong, on an error frame, and when none comes within readWait.
func (cl *client) expect(typ string) wireFrame {
	cl.t.Helper()
	for {
		var f wireFrame
		_ = cl.c.SetReadDeadline(time.Now().Add(readWait))
		if err := cl.c.ReadJSON(&f); err != nil {
			cl.t.Fatalf("%s waiting for %s: %v", cl.id, typ, err)
		}
		switch {
		case f.Type == typ:
			return f
		case f.Type != "pong":
			cl.t.Fatalf("%s got %s (%s %s), want %s", cl.id, f.Type, f.Code, f.ID, typ)
		}
	}
}

// expectFrom reads the next frame, which must be of type typ about (or
// from) peer id.
func (cl *client) expectFrom(typ, id string) wireFrame {
	cl.t.Helper()
	f := cl.expect(typ)
	if f.ID != id && f.From != id {
		cl.t.Fatalf("%s got %s about %s%s, want %s", cl.id, typ, f.ID, f.From, id)
	}
	return f
}

func (cl *client) send(v any) {
	cl.t.Helper()
	if err := cl.c.WriteJSON(v); err != nil {
		cl.t.Fatalf("%s sending: %v", cl.id, err)
	}
}

func (cl *client) signal(to string, data any) {
	cl.t.Helper()
	cl.send(map[string]any{"type": "signal", "to": to, "data": data})
}

// quietFor keeps the client busy for d, pinging it: every ping must be
// answered, and nothing else may arrive (no peer-left, say). The wait is
// the case: something must not happen during it.
func (cl *client) quietFor(d time.Duration) {
	cl.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		cl.send(map[string]any{"type": "ping"})
		_ = cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var f wireFrame
		if err := cl.c.ReadJSON(&f); err != nil {
			cl.t.Fatalf("%s: %v while it should stay connected", cl.id, err)
		}
		if f.Type != "pong" {
			cl.t.Fatalf("%s got %s %s%s while nothing should happen", cl.id, f.Type, f.ID, f.From)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Two peers on different servers meet in one room, signal and broadcast
// both ways, and 500 numbered signals each way arrive in order.
func TestCaddyProcessesShareARoom(t *testing.T) {
	srv := startNATS(t)
	a, b := twoCaddies(t, srv.URL(), 0)
	pa := join(t, a, "standup")
	pb := join(t, b, "standup")
	if len(pb.peers) != 1 || pb.peers[0] != pa.id {
		t.Fatalf("welcome on the second server lists %v, want %s", pb.peers, pa.id)
	}
	pa.expectFrom("peer-joined", pb.id)
	pa.signal(pb.id, map[string]string{"sdp": "offer"})
	if f := pb.expectFrom("signal", pa.id); string(f.Data) != `{"sdp":"offer"}` {
		t.Fatalf("signal data %s", f.Data)
	}
	pb.send(map[string]any{"type": "broadcast", "data": 7})
	if f := pa.expectFrom("broadcast", pb.id); string(f.Data) != "7" {
		t.Fatalf("broadcast data %s", f.Data)
	}
	const n = 500
	var wg sync.WaitGroup
	for _, pair := range [][2]*client{{pa, pb}, {pb, pa}} {
		from, to := pair[0], pair[1]
		wg.Go(func() {
			for i := range n {
				if err := from.c.WriteJSON(map[string]any{"type": "signal", "to": to.id, "data": i}); err != nil {
					t.Errorf("sending %d: %v", i, err)
					return
				}
			}
		})
	}
	for _, pair := range [][2]*client{{pa, pb}, {pb, pa}} {
		from, to := pair[0], pair[1]
		for i := range n {
			if f := to.expectFrom("signal", from.id); string(f.Data) != fmt.Sprint(i) {
				t.Fatalf("signal %d from %s arrived as %s", i, from.id, f.Data)
			}
		}
	}
	wg.Wait()
}

// Twenty peers join one room at once, half on each server: max_peers 6
// admits exactly six, and they all see each other.
func TestCaddyProcessesHoldTheRoomCapUnderARace(t *testing.T) {
	srv := startNATS(t)
	const peers, maxPeers = 20, 6
	a, b := twoCaddies(t, srv.URL(), maxPeers)
	// The first join connects each server to NATS and creates the
	// bucket; the race is about the cap, not about that.
	for _, p := range []*caddyproc.Proc{a, b} {
		cl, _ := joinEventually(t, p, "warmup", 15*time.Second)
		cl.c.Close()
	}
	conns := make([]*websocket.Conn, peers)
	for i := range conns {
		var err error
		if conns[i], err = dialRaw(t, []*caddyproc.Proc{a, b}[i%2], "race"); err != nil {
			t.Fatal(err)
		}
	}
	// Upgraded connections join as soon as they are read from the
	// server's side: all twenty are already racing.
	frames := make([]wireFrame, peers)
	errs := make([]error, peers)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { frames[i], errs[i] = first(c) })
	}
	wg.Wait()
	var admitted []*client
	full := 0
	for i, f := range frames {
		switch {
		case errs[i] != nil:
			t.Fatalf("peer %d: %v", i, errs[i])
		case f.Type == "welcome":
			admitted = append(admitted, &client{t: t, c: conns[i], id: f.ID})
		case f.Type == "error" && f.Code == "room_full":
			full++
		default:
			t.Fatalf("peer %d got %+v", i, f)
		}
	}
	if len(admitted) != maxPeers || full != peers-maxPeers {
		t.Fatalf("%d admitted and %d room_full, want %d and %d", len(admitted), full, maxPeers, peers-maxPeers)
	}
	// Everyone admitted learns of all the others, in welcome or
	// peer-joined.
	for _, cl := range admitted {
		seen := map[string]bool{}
		for i, f := range frames {
			if conns[i] == cl.c {
				for _, m := range f.Peers {
					seen[m.ID] = true
				}
			}
		}
		for len(seen) < maxPeers-1 {
			seen[cl.expect("peer-joined").ID] = true
		}
	}
}

// A Caddy killed with SIGKILL takes its peers with it: the other server's
// peers see them leave within node_timeout plus slack, and their seats are
// free again.
func TestCaddyProcessKilledTakesItsPeers(t *testing.T) {
	srv := startNATS(t)
	a, b := twoCaddies(t, srv.URL(), 3)
	pa := join(t, a, "r")
	b1 := join(t, b, "r")
	b2 := join(t, b, "r")
	pa.expectFrom("peer-joined", b1.id)
	pa.expectFrom("peer-joined", b2.id)
	c, err := dialRaw(t, a, "r")
	if err != nil {
		t.Fatal(err)
	}
	if f, err := first(c); err != nil || f.Code != "room_full" {
		t.Fatalf("a fourth peer got %+v, %v; want room_full", f, err)
	}
	start := time.Now()
	b.Kill()
	left := map[string]bool{pa.expect("peer-left").ID: true, pa.expect("peer-left").ID: true}
	if !left[b1.id] || !left[b2.id] {
		t.Fatalf("peer-left for %v, want %s and %s", left, b1.id, b2.id)
	}
	// node_timeout, plus a heartbeat period (a third of it) for the
	// sweep, plus slack for a loaded machine.
	took := time.Since(start)
	if bound := testNodeTimeout + testNodeTimeout/3 + 5*time.Second; took > bound {
		t.Fatalf("peer-left %s after the kill, more than %s", took, bound)
	}
	t.Logf("peer-left %s after the kill (node_timeout %s)", took.Round(time.Millisecond), testNodeTimeout)
	next := join(t, a, "r")
	if len(next.peers) != 1 || next.peers[0] != pa.id {
		t.Fatalf("a new peer's welcome lists %v, want %s alone", next.peers, pa.id)
	}
	pa.expectFrom("peer-joined", next.id)
}

// NATS stops for longer than node_timeout: nobody connected leaves,
// newcomers are told `unavailable`, signals across servers sent across the
// failure (before, while and after Caddy notices it) arrive late, once and
// in order (or, beyond what a server holds unacknowledged, are answered
// `undeliverable`), and when NATS is back both servers admit peers within
// 5 s and the room works without anyone rejoining.
func TestCaddyProcessesRideOutANATSOutage(t *testing.T) {
	srv := startNATS(t)
	a, b := twoCaddies(t, srv.URL(), 0)
	pa := join(t, a, "r")
	pb := join(t, b, "r")
	pa.expectFrom("peer-joined", pb.id)
	// A stream of signals runs into the outage: NATS stops once the first
	// ones have arrived, while the others are on their way.
	const before = 300
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		for i := range before {
			if err := pa.c.WriteJSON(map[string]any{"type": "signal", "to": pb.id, "data": i}); err != nil {
				t.Errorf("sending %d: %v", i, err)
				return
			}
			time.Sleep(time.Millisecond) // a pace, so that the stream spans the stop
		}
	}()
	arrived := 0
	for ; arrived < 20; arrived++ {
		if f := pb.expectFrom("signal", pa.id); string(f.Data) != fmt.Sprint(arrived) {
			t.Fatalf("signal %d arrived as %s", arrived, f.Data)
		}
	}
	srv.Stop()
	<-streamed
	for _, p := range []*caddyproc.Proc{a, b} {
		eventually(t, 15*time.Second, "a newcomer refused with unavailable", func() bool {
			c, err := dialRaw(t, p, "r")
			if err != nil {
				return false
			}
			defer c.Close()
			f, err := first(c)
			return err == nil && f.Type == "error" && f.Code == "unavailable"
		})
	}
	for _, p := range []*caddyproc.Proc{a, b} {
		eventually(t, 10*time.Second, "Caddy noticing the outage", func() bool {
			return strings.Contains(p.Log(), lostNATS)
		})
	}
	// The server holds link.MaxPending frames unacknowledged for the other (some
	// of the stream's among them); those beyond are answered
	// `undeliverable`, and only those.
	const total = before + link.MaxPending + 1
	for i := before; i < total; i++ {
		pa.signal(pb.id, i)
	}
	refused := pa.undeliverable()
	// (Those that arrived count until the other server's acknowledgement
	// comes back.)
	if refused == 0 || refused > before+1 {
		t.Fatalf("%d frames answered undeliverable, want 1 to %d", refused, before+1)
	}
	queued := total - refused
	t.Logf("%d signals held through the outage, %d refused", queued, refused)
	// The outage outlasts node_timeout: the wait is the case. (pb is
	// read from once NATS is back: the stream's first signals may have
	// reached it before the outage.)
	pa.quietFor(testNodeTimeout + time.Second)
	restart := time.Now()
	srv.Start()
	back := time.Now()
	t.Logf("NATS took %s to start again", back.Sub(restart).Round(time.Millisecond))
	for _, p := range []*caddyproc.Proc{a, b} {
		probe, took := joinEventually(t, p, "probe", 5*time.Second)
		probe.c.Close()
		t.Logf("server on port %d admits peers %s after NATS came back", p.Port, took.Round(time.Millisecond))
	}
	for i := arrived; i < queued; i++ {
		if f := pb.expectFrom("signal", pa.id); string(f.Data) != fmt.Sprint(i) {
			t.Fatalf("queued signal %d arrived as %s", i, f.Data)
		}
	}
	t.Logf("the queued signals arrived %s after NATS came back", time.Since(back).Round(time.Millisecond))
	// Both servers judge the others again once connected for node_timeout:
	// nobody may leave then either.
	pa.quietFor(2*testNodeTimeout + time.Second)
	pb.quietFor(time.Second)
	pb.signal(pa.id, "back")
	pa.expectFrom("signal", pb.id)
	pc := join(t, a, "r")
	if len(pc.peers) != 2 {
		t.Fatalf("a newcomer's welcome lists %v, want both peers", pc.peers)
	}
	pa.expectFrom("peer-joined", pc.id)
	pb.expectFrom("peer-joined", pc.id)
}

// undeliverable counts the `undeliverable` answers to the frames sent so
// far: it pings and reads until the pong, failing on anything else.
func (cl *client) undeliverable() int {
	cl.t.Helper()
	cl.send(map[string]any{"type": "ping"})
	n := 0
	for {
		var f wireFrame
		_ = cl.c.SetReadDeadline(time.Now().Add(readWait))
		if err := cl.c.ReadJSON(&f); err != nil {
			cl.t.Fatalf("%s waiting for pong: %v", cl.id, err)
		}
		switch {
		case f.Type == "pong":
			return n
		case f.Type == "error" && f.Code == "undeliverable":
			n++
		default:
			cl.t.Fatalf("%s got %s (%s) waiting for pong", cl.id, f.Type, f.Code)
		}
	}
}

// clusterNodeTimeout is node_timeout in the NATS cluster case.
const clusterNodeTimeout = 8 * time.Second

// Three Caddy processes on a three-node NATS cluster (nats-server
// processes, bucket replicas 3), each pointed at its own node: when one
// node is killed (SIGKILL), the Caddy on it moves to another (nats.go
// learns the cluster's URLs), nobody leaves, and the room keeps working.
// Streams of signals run across the kill, to and from the Caddy on the
// killed node: every signal arrives once, in order.
func TestCaddyProcessesOnANATSCluster(t *testing.T) {
	nodes, urls := natstest.ClusterProcesses(t, 3)
	prefix := fmt.Sprint("cl", prefixes.Add(1))
	var procs []*caddyproc.Proc
	for _, u := range urls {
		c := natsConf(prefix, 0, u)
		c.extra = "\t\t\treplicas 3\n"
		// Long enough for a Caddy to move to another node (reconnect
		// waits, JetStream electing leaders) on a loaded machine: a
		// failover must not look like a dead Caddy.
		c.nodeTimeout = clusterNodeTimeout
		procs = append(procs, startCaddy(t, c))
	}
	var cls []*client
	for _, p := range procs {
		// A replicated bucket takes joins once its stream has a leader.
		cl, _ := joinEventually(t, p, "r", 30*time.Second)
		cls = append(cls, cl)
	}
	cls[0].expectFrom("peer-joined", cls[1].id)
	cls[0].expectFrom("peer-joined", cls[2].id)
	cls[1].expectFrom("peer-joined", cls[2].id)
	start := time.Now()
	const n = 500
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		for i := range n {
			if i == n/4 {
				nodes[0].Kill()
			}
			for _, c := range [][2]*client{{cls[0], cls[1]}, {cls[2], cls[0]}} {
				if err := c[0].c.WriteJSON(map[string]any{"type": "signal", "to": c[1].id, "data": i}); err != nil {
					t.Errorf("sending %d: %v", i, err)
					return
				}
			}
		}
	}()
	for i := range n {
		if f := cls[1].expectFrom("signal", cls[0].id); string(f.Data) != fmt.Sprint(i) {
			t.Fatalf("signal %d sent across the kill arrived as %s", i, f.Data)
		}
	}
	for i := range n {
		if f := cls[0].expectFrom("signal", cls[2].id); string(f.Data) != fmt.Sprint(i) {
			t.Fatalf("signal %d sent across the kill to its Caddy arrived as %s", i, f.Data)
		}
	}
	<-sending
	t.Logf("%d signals each way across the kill arrived once and in order %s after it", n, time.Since(start).Round(time.Millisecond))
	cl, took := joinEventually(t, procs[0], "r", 20*time.Second)
	t.Logf("the Caddy of the killed node admits a peer %s after the kill", took.Round(time.Millisecond))
	if len(cl.peers) != 3 {
		t.Fatalf("a newcomer's welcome lists %v, want 3 peers", cl.peers)
	}
	for _, c := range cls {
		c.expectFrom("peer-joined", cl.id)
	}
	for i := range 20 {
		cls[0].signal(cls[1].id, i)
		cls[2].signal(cls[0].id, i)
	}
	for i := range 20 {
		if f := cls[1].expectFrom("signal", cls[0].id); string(f.Data) != fmt.Sprint(i) {
			t.Fatalf("signal %d arrived as %s", i, f.Data)
		}
		if f := cls[0].expectFrom("signal", cls[2].id); string(f.Data) != fmt.Sprint(i) {
			t.Fatalf("signal %d arrived as %s", i, f.Data)
		}
	}
	t.Logf("the room works again %s after the kill", time.Since(start).Round(time.Millisecond))
	// Nobody sees anyone leave, also once node_timeout (and a heartbeat
	// period) has passed since the kill.
	cls[0].quietFor(time.Until(start.Add(clusterNodeTimeout * 4 / 3)))
	for _, c := range cls[1:] {
		c.quietFor(time.Second)
	}
}

// Peers join and leave, on both servers, in three rooms at once; once all
// have gone the bucket holds no key.
func TestCaddyProcessChurnLeavesNoKeys(t *testing.T) {
	srv := startNATS(t)
	prefix := fmt.Sprint("churn", prefixes.Add(1))
	// Leaves are asynchronous: a peer that rejoins at once may still
	// hold its old seat, so the cap is out of the way.
	c := natsConf(prefix, 100, srv.URL())
	procs := []*caddyproc.Proc{startCaddy(t, c), startCaddy(t, c)}
	for _, p := range procs {
		cl, _ := joinEventually(t, p, "warmup", 15*time.Second)
		leaveNow(cl.c)
	}
	const peers, rounds = 12, 5
	var wg sync.WaitGroup
	for i := range peers {
		wg.Go(func() {
			for range rounds {
				c, err := dialRaw(t, procs[i%2], fmt.Sprint("room", i%3))
				if err != nil {
					t.Error(err)
					return
				}
				if f, err := first(c); err != nil || f.Type != "welcome" {
					t.Errorf("peer %d: %+v %v", i, f, err)
				}
				_ = c.WriteJSON(map[string]any{"type": "broadcast", "data": i})
				leaveNow(c) // a connection merely closed stays for resume_window
			}
		})
	}
	wg.Wait()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, prefix+"_rooms")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	eventually(t, 15*time.Second, "an empty bucket", func() bool {
		keys = nil
		lister, err := kv.ListKeys(ctx)
		if err != nil {
			return false
		}
		for k := range lister.Keys() {
			keys = append(keys, k)
		}
		return len(keys) == 0
	})
}
