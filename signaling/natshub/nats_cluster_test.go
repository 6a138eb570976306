package natshub

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nats-io/nats.go"

	"github.com/caddy-webrtc/caddy-webrtc/internal/natstest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub/hubtest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// Three Caddy-like hubs, each first connected to its own server of a
// three-node NATS cluster (bucket with three replicas); one NATS server
// stops, and its hub moves to another without any peer leaving.
func TestThreeNodeNATSCluster(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	urls := natstest.URLs(servers)
	var hs []*Hub
	for i := range servers {
		// Each hub lists its own server first; nats.go shuffles the rest.
		own := append([]string{urls[i]}, append(append([]string{}, urls[:i]...), urls[i+1:]...)...)
		// The node timeout is longer than other cases': the move below takes
		// a reconnect and the others' hearing of it, which on a loaded
		// 2-core machine (the race detector, other packages' tests) has
		// taken more than the 3 s of testNodeTimeout. Nothing waits for it. (The case in
		// link_cluster_test.go uses it for the same reason.)
		b := &Backend{URLs: own, Prefix: "cluster", NodeTimeout: caddy.Duration(clusterNodeTimeout), Replicas: 3}
		b.setDefaults()
		if err := b.Validate(); err != nil {
			t.Fatal(err)
		}
		opened, _ := b.OpenHub("default")
		h := opened.(*Hub)
		h.cfg.options = append(h.cfg.options, noRandomize())
		t.Cleanup(h.Shutdown)
		hs = append(hs, h)
	}
	var ps []*hubtest.Peer
	eventually(t, 30*time.Second, "the bucket is created", func() bool {
		return hs[0].ensureReady() == nil
	})
	for i, h := range hs {
		p := hubtest.NewPeer(fmt.Sprint("p", i))
		// A replicated bucket serves writes once its stream has a leader,
		// which a loaded machine can take a while to elect: until then
		// joins are refused (unavailable), as they should be.
		eventually(t, 30*time.Second, fmt.Sprintf("hub %d admitting a peer", i), func() bool {
			_, err := h.Join("r", p, hub.JoinRequest{MaxPeers: 6, Welcome: func(m []wire.PeerInfo) []byte {
				b, _ := json.Marshal(map[string]any{"type": "welcome", "id": p.ID(), "peers": m})
				return b
			}})
			return err == nil
		})
		if f := p.Next(t); f.Type != "welcome" {
			t.Fatalf("%s got %+v first, want its welcome", p.ID(), f)
		}
		ps = append(ps, p)
	}
	ps[0].Expect(t, "peer-joined", "p1")
	ps[0].Expect(t, "peer-joined", "p2")
	ps[1].Expect(t, "peer-joined", "p2")
	if got := hs[0].nc.ConnectedUrl(); got != urls[0] {
		t.Fatalf("hub 0 connected to %s, want %s", got, urls[0])
	}
	servers[0].Shutdown()
	cut := time.Now()
	eventually(t, 20*time.Second, "hub 0 moves to another NATS server", func() bool {
		return hs[0].nodes.isConnected() && hs[0].nc.ConnectedUrl() != urls[0]
	})
	t.Logf("hub 0 moved in %s", time.Since(cut).Round(time.Millisecond))
	if err := hs[0].Deliver("r", "p0", "", []byte(`{"type":"broadcast","from":"p0","data":1}`)); err != nil {
		t.Fatal(err)
	}
	ps[1].Expect(t, "broadcast", "p0")
	ps[2].Expect(t, "broadcast", "p0")
	if err := hs[2].Deliver("r", "p2", "p0", []byte(`{"type":"signal","from":"p2","data":2}`)); err != nil {
		t.Fatal(err)
	}
	ps[0].Expect(t, "signal", "p2")
	for _, p := range ps {
		p.Quiet(t) // nobody saw anyone leave
	}
}

func noRandomize() nats.Option { return nats.DontRandomize() }

// A node whose bucket work stalls (a replicated bucket without a quorum
// answers no operation until opTimeout) keeps heartbeating: otherwise
// the others would take it for dead and drop its members while it is
// merely waiting for JetStream.
func TestHeartbeatsGoOnWhileTheBucketStalls(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	urls := natstest.URLs(servers)
	var hs []*Hub
	prefix := fmt.Sprint("stall", prefixes.Add(1))
	for range 2 { // both on server 0, which stays
		bk := &Backend{URLs: urls[:1], Prefix: prefix, NodeTimeout: caddy.Duration(testNodeTimeout), Replicas: 3}
		bk.setDefaults()
		opened, err := bk.OpenHub("default")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(opened.Shutdown)
		hs = append(hs, opened.(*Hub))
	}
	a, b := hs[0], hs[1]
	eventually(t, 30*time.Second, "the bucket is created", func() bool {
		return a.ensureReady() == nil && b.ensureReady() == nil
	})
	for i := range 4 {
		room := fmt.Sprint("r", i)
		eventually(t, 30*time.Second, "a peer admitted to "+room, func() bool {
			_, err := a.Join(room, hubtest.NewPeer("p"), hub.JoinRequest{MaxPeers: 6, Welcome: func([]wire.PeerInfo) []byte { return []byte(`{}`) }})
			return err == nil
		})
	}
	eventually(t, 10*time.Second, "b hears a", func() bool {
		b.nodes.mu.Lock()
		defer b.nodes.mu.Unlock()
		_, ok := b.nodes.lastSeen[a.node]
		return ok
	})
	// Without a quorum every bucket operation waits opTimeout; core NATS
	// on server 0 goes on.
	servers[1].Shutdown()
	servers[2].Shutdown()
	a.trigger() // a re-asserts its 4 rooms: about 4 * opTimeout of waiting
	end := time.Now().Add(2 * testNodeTimeout)
	for time.Now().Before(end) {
		if b.nodes.dead(a.node) {
			t.Fatal("b took a for dead while a's bucket work stalled")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
