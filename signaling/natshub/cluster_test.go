package natshub

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/internal/natstest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub/hubtest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

func joinReq(id string, max int) hub.JoinRequest {
	return hub.JoinRequest{
		MaxPeers: max,
		Info:     wire.PeerInfo{User: "u-" + id},
		Welcome: func(m []wire.PeerInfo) []byte {
			return fmt.Appendf(nil, `{"type":"welcome","id":%q,"peers":%d}`, id, len(m))
		},
	}
}

// members reads a room's stored members.
func members(t *testing.T, h *Hub, room string) []member {
	t.Helper()
	ctx, cancel := opContext()
	defer cancel()
	st, _, err := h.load(ctx, h.roomKey(room))
	if err != nil {
		t.Fatal(err)
	}
	return st.Members
}

// crash stops a hub the way a killed server stops: no goodbye, its
// members stay in the bucket, its heartbeats end.
func (h *Hub) crash() {
	h.mu.Lock()
	h.closed = true
	h.views = make(map[string]*roomView)
	h.mu.Unlock()
	h.startMu.Lock()
	defer h.startMu.Unlock()
	close(h.stop)
	<-h.stopped
	h.stop = nil
	h.nc.Close()
}

func TestRoomCapHoldsAcrossServersUnderARace(t *testing.T) {
	srv := startNATS(t)
	hs := newHubs(t, srv.URL(), 2)
	const peers, max = 20, 6
	var wg sync.WaitGroup
	errs := make([]error, peers)
	for i := range peers {
		wg.Go(func() {
			id := fmt.Sprint("p", i)
			_, errs[i] = hs[i%2].Join("r", hubtest.NewPeer(id), joinReq(id, max))
		})
	}
	wg.Wait()
	admitted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			admitted++
		case !errors.Is(err, hub.ErrRoomFull):
			t.Fatalf("peer %d: %v", i, err)
		}
	}
	if admitted != max {
		t.Fatalf("%d peers admitted, want %d", admitted, max)
	}
	if got := len(members(t, hs[0], "r")); got != max {
		t.Fatalf("the bucket holds %d members, want %d", got, max)
	}
}

func TestTakeoverClosesTheRemoteSeat(t *testing.T) {
	srv := startNATS(t)
	hs := newHubs(t, srv.URL(), 2)
	old := hubtest.NewPeer("old")
	hubtest.Join(t, hs[1], "r", old, 2)
	next := hubtest.NewPeer("next")
	req := joinReq("next", 2)
	req.Replace = "old"
	replaced, err := hs[0].Join("r", next, req)
	if err != nil || replaced == nil || replaced.ID() != "old" {
		t.Fatalf("takeover: %v, %v", replaced, err)
	}
	replaced.Close(wire.CloseReplaced, "replaced") // what the handler does
	eventually(t, 5*time.Second, "the old connection closed with 4410", func() bool {
		return old.ClosedWith() == wire.CloseReplaced
	})
	old.Expect(t, "error", "")
	hs[1].Leave("r", "old") // its handler's leave must not touch the new seat
	if m := members(t, hs[0], "r"); len(m) != 1 || m[0].ID != "next" {
		t.Fatalf("members %+v, want next alone", m)
	}
}

// A takeover's snapshot may reach the replaced peer's server after that
// server read the room itself (here its own join): the stored state then
// lacks the peer, and the server must disconnect it as replaced, not put
// it back as one an outage dropped (which left a ghost seat for good).
func TestTakeoverSeenInTheBucketBeforeItsSnapshot(t *testing.T) {
	srv := startNATS(t)
	hs := newHubs(t, srv.URL(), 2)
	old := hubtest.NewPeer("old")
	hubtest.Join(t, hs[0], "r", old, 6)
	// hs[1]'s takeover as its join writes it to the bucket (written here
	// through hs[0]'s connection), without the snapshot that would tell
	// hs[0].
	ctx, cancel := opContext()
	defer cancel()
	key := hs[0].roomKey("r")
	if _, err := hs[0].update(ctx, key, func(st *roomState) (bool, error) {
		i := st.index("old")
		if i < 0 {
			return false, fmt.Errorf("old is not in %+v", st.Members)
		}
		gone := st.Members[i]
		st.Members = append(st.Members[:i], st.Members[i+1:]...)
		st.seat(member{ID: "next", Node: hs[1].node}, gone)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	later := hubtest.NewPeer("later")
	hubtest.Join(t, hs[0], "r", later, 6)
	old.Expect(t, "error", "")
	eventually(t, 5*time.Second, "the replaced peer closed with 4410", func() bool {
		return old.ClosedWith() == wire.CloseReplaced
	})
	hs[0].Leave("r", "old") // what its handler does on the close
	if m := members(t, hs[0], "r"); len(m) != 2 || m[0].ID != "next" || m[1].ID != "later" {
		t.Fatalf("members %+v, want next and later", m)
	}
	if st := hs[0].Stats(); st.LocalPeers != 1 {
		t.Fatalf("hs[0] holds %d peers, want later alone", st.LocalPeers)
	}
}

func TestADeadServerTakesItsPeersWithIt(t *testing.T) {
	srv := startNATS(t)
	hs := newHubs(t, srv.URL(), 2)
	p1, p2 := hubtest.NewPeer("p1"), hubtest.NewPeer("p2")
	hubtest.Join(t, hs[0], "r", p1, 6)
	hubtest.Join(t, hs[1], "r", p2, 6)
	hubtest.Join(t, hs[1], "other", hubtest.NewPeer("p3"), 6)
	p1.Expect(t, "peer-joined", "p2")
	hs[1].crash()
	// Within node_timeout, plus the time the survivor needs to have been
	// connected that long, plus a heartbeat period for the sweep.
	old := hubtest.Wait
	hubtest.Wait = 3*testNodeTimeout + 2*time.Second
	defer func() { hubtest.Wait = old }()
	p1.Expect(t, "peer-left", "p2")
	eventually(t, 5*time.Second, "the dead server's rooms gone", func() bool {
		st := hs[0].Stats()
		return st.Rooms == 1 && st.Peers == 1 && st.LocalPeers == 1
	})
	hs[0].Leave("r", "p1")
	eventually(t, 5*time.Second, "no room left", func() bool {
		st := hs[0].Stats()
		return st.Rooms == 0 && st.Peers == 0 && st.LocalPeers == 0
	})
}

func TestANATSOutageMakesNoLivePeerLeave(t *testing.T) {
	srv := startNATS(t)
	hs := newHubs(t, srv.URL(), 2)
	p1, p2 := hubtest.NewPeer("p1"), hubtest.NewPeer("p2")
	hubtest.Join(t, hs[0], "r", p1, 6)
	hubtest.Join(t, hs[1], "r", p2, 6)
	p1.Expect(t, "peer-joined", "p2")
	hubtest.Join(t, hs[1], "solo", hubtest.NewPeer("q"), 6)
	srv.Stop()
	eventually(t, 15*time.Second, "both servers notice the outage", func() bool {
		return !hs[0].nodes.isConnected() && !hs[1].nodes.isConnected()
	})
	if _, err := hs[0].Join("r", hubtest.NewPeer("p3"), joinReq("p3", 6)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("join during the outage: %v, want ErrUnavailable", err)
	}
	for i := range 3 {
		if err := hs[0].Deliver("r", "p1", "p2", fmt.Appendf(nil, `{"type":"signal","from":"p1","data":%d}`, i)); err != nil {
			t.Fatalf("signal during the outage: %v", err)
		}
	}
	hs[1].Leave("solo", "q") // the last local peer of its room, while NATS is away
	// The outage itself must outlast node_timeout: the wait is the case.
	time.Sleep(testNodeTimeout + time.Second)
	srv.Start()
	for i := range 3 {
		if f := p2.Expect(t, "signal", "p1"); string(f.Data) != fmt.Sprint(i) {
			t.Fatalf("queued signal %d arrived as %s", i, f.Data)
		}
	}
	// Long enough for both to judge others again after reconnecting.
	time.Sleep(2*testNodeTimeout + time.Second)
	p1.Quiet(t)
	p2.Quiet(t)
	if err := hs[1].Deliver("r", "p2", "p1", []byte(`{"type":"signal","from":"p2","data":"back"}`)); err != nil {
		t.Fatal(err)
	}
	p1.Expect(t, "signal", "p2")
	if got := len(members(t, hs[0], "r")); got != 2 {
		t.Fatalf("%d members after the outage, want 2", got)
	}
	hubtest.Join(t, hs[0], "r", hubtest.NewPeer("p4"), 6)
	p2.Expect(t, "peer-joined", "p4")
	if m := members(t, hs[0], "solo"); len(m) != 0 {
		t.Fatalf("a peer that left during the outage is still a member: %+v", m)
	}
}

// clientGoroutines counts goroutines running NATS client or hub code (the
// embedded server's own are not counted: they belong to the test).
func clientGoroutines() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "nats-io/nats.go") || strings.Contains(g, "natshub.(*") {
			n++
		}
	}
	return n
}

func TestChurnLeavesNothingBehind(t *testing.T) {
	srv := startNATS(t)
	hs := newHubs(t, srv.URL(), 2)
	const peers, rounds = 12, 5
	var wg sync.WaitGroup
	for i := range peers {
		wg.Go(func() {
			h := hs[i%2]
			room := fmt.Sprint("room", i%3)
			for r := range rounds {
				id := fmt.Sprintf("p%d-%d", i, r)
				if _, err := h.Join(room, hubtest.NewPeer(id), joinReq(id, 0)); err != nil {
					t.Error(err)
					return
				}
				_ = h.Deliver(room, id, "", []byte(`{"type":"broadcast"}`))
				h.Leave(room, id)
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if keys, err := hs[0].listKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("rooms left in the bucket: %v %v", keys, err)
	}
	// Emptied rooms leave delete markers; purged, the bucket is empty.
	if err := hs[0].purgeMarkersCtx(ctx, -1); err != nil {
		t.Fatal(err)
	}
	stream, err := hs[0].js.Stream(ctx, "KV_"+hs[0].bucketName())
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Fatalf("the bucket keeps %d messages after purging markers", info.State.Msgs)
	}
	if clientGoroutines() == 0 {
		t.Fatal("the goroutine probe sees no client goroutine while hubs are open")
	}
	for i, h := range hs {
		h.mu.Lock()
		n := len(h.views)
		h.mu.Unlock()
		if n != 0 {
			t.Fatalf("hub %d keeps %d rooms", i, n)
		}
		h.Shutdown()
	}
	eventually(t, 10*time.Second, "no client or hub goroutine left", func() bool {
		return clientGoroutines() == 0
	})
	// The server notices closed connections on its own schedule.
	eventually(t, 10*time.Second, "no NATS connection left", func() bool {
		return srv.Srv.NumClients() == 0
	})
}

// hubtestJoin joins one peer so the hub connects.
func hubtestJoin(t *testing.T, h *Hub) {
	t.Helper()
	hubtest.Join(t, h, "r", hubtest.NewPeer("x"), 6)
}

func TestStatsCountTheClusterAndThisServer(t *testing.T) {
	srv := startNATS(t)
	hs := newHubs(t, srv.URL(), 2)
	hubtest.Join(t, hs[0], "r1", hubtest.NewPeer("a1"), 6)
	hubtest.Join(t, hs[0], "r1", hubtest.NewPeer("a2"), 6)
	hubtest.Join(t, hs[1], "r1", hubtest.NewPeer("b1"), 6)
	hubtest.Join(t, hs[1], "r2", hubtest.NewPeer("b2"), 6)
	want := hub.HubStats{Backend: "nats", LocalPeers: 2, Rooms: 2, Peers: 4}
	eventually(t, 2*statsTTL+time.Second, "cluster-wide counts", func() bool {
		return hs[0].Stats() == want
	})
	hs[1].Leave("r2", "b2")
	want = hub.HubStats{Backend: "nats", LocalPeers: 1, Rooms: 1, Peers: 3}
	eventually(t, 2*statsTTL+time.Second, "counts after a room emptied", func() bool {
		return hs[1].Stats() == want
	})
}

// A hub whose NATS is not there yet refuses joins (the handler answers
// `unavailable`) after a bounded wait, and takes them once NATS is up.
func TestJoinsWaitForNATSToComeUp(t *testing.T) {
	n := natstest.New(t)
	hs := newHubs(t, n.URL(), 1)
	start := time.Now()
	if _, err := hs[0].Join("r", hubtest.NewPeer("early"), joinReq("early", 6)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("join without NATS: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > connectWait+2*time.Second {
		t.Fatalf("the refused join took %s", d)
	}
	n.Start()
	eventually(t, 15*time.Second, "a join once NATS is up", func() bool {
		_, err := hs[0].Join("r", hubtest.NewPeer("late"), joinReq("late", 6))
		return err == nil
	})
}

// A server that shuts down removes its peers at once: the others need not
// wait for node_timeout.
func TestShutdownTellsTheOtherServersAtOnce(t *testing.T) {
	srv := startNATS(t)
	hs := newHubs(t, srv.URL(), 2)
	p1, p2 := hubtest.NewPeer("p1"), hubtest.NewPeer("p2")
	hubtest.Join(t, hs[0], "r", p1, 6)
	hubtest.Join(t, hs[1], "r", p2, 6)
	p1.Expect(t, "peer-joined", "p2")
	start := time.Now()
	hs[1].Shutdown()
	p1.Expect(t, "peer-left", "p2")
	if d := time.Since(start); d >= testNodeTimeout {
		t.Fatalf("peer-left took %s, as long as a dead server's", d)
	}
	if p2.ClosedWith() != wire.CloseGoingAway {
		t.Fatalf("the stopping server's peer closed with %d", p2.ClosedWith())
	}
	if m := members(t, hs[0], "r"); len(m) != 1 {
		t.Fatalf("members after shutdown: %+v", m)
	}
}
