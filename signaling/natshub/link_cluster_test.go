package natshub

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-webrtc/caddy-webrtc/internal/natstest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub/hubtest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// clusterHubs opens one hub per URL list on a three-node cluster of
// nats-server processes, each connected first to its own node.
func clusterHubs(t *testing.T, urls []string, count int) []*Hub {
	t.Helper()
	prefix := fmt.Sprint("rel", prefixes.Add(1))
	var hs []*Hub
	for i := range count {
		own := append([]string{urls[i]}, append(append([]string{}, urls[:i]...), urls[i+1:]...)...)
		b := &Backend{URLs: own, Prefix: prefix, NodeTimeout: caddy.Duration(clusterNodeTimeout), Replicas: 3}
		b.setDefaults()
		if err := b.Validate(); err != nil {
			t.Fatal(err)
		}
		opened, err := b.OpenHub("default")
		if err != nil {
			t.Fatal(err)
		}
		h := opened.(*Hub)
		h.cfg.options = append(h.cfg.options, noRandomize())
		t.Cleanup(h.Shutdown)
		hs = append(hs, h)
	}
	return hs
}

// A stream of numbered signals from a peer on hub A to a peer on hub B,
// the two on different nodes of a NATS cluster, while the node hub A is
// connected to is killed (SIGKILL) mid-stream: every signal Deliver took
// arrives exactly once and in order, including those A had written to the
// dying node; one Deliver refused (the sender's `undeliverable`) need not.
func TestSignalsCrossAKilledNATSNodeExactlyOnceInOrder(t *testing.T) {
	nodes, urls := natstest.ClusterProcesses(t, 3)
	hs := clusterHubs(t, urls, 2)
	pa, pb := hubtest.NewPeer("pa"), hubtest.NewPeer("pb")
	for i, p := range []*hubtest.Peer{pa, pb} {
		// A replicated bucket takes joins once its stream has a leader.
		eventually(t, 30*time.Second, fmt.Sprintf("hub %d admitting a peer", i), func() bool {
			_, err := hs[i].Join("r", p, hub.JoinRequest{MaxPeers: 6, Welcome: func(m []wire.PeerInfo) []byte {
				b, _ := json.Marshal(map[string]any{"type": "welcome", "id": p.ID(), "peers": m})
				return b
			}})
			return err == nil
		})
		p.Expect(t, "welcome", p.ID())
	}
	pa.Expect(t, "peer-joined", "pb")
	if got := hs[0].nc.ConnectedUrl(); got != urls[0] {
		t.Fatalf("hub A connected to %s, want %s", got, urls[0])
	}
	if got := hs[1].nc.ConnectedUrl(); got != urls[1] {
		t.Fatalf("hub B connected to %s, want %s", got, urls[1])
	}
	const total, killAt = 3000, 1000
	refused := make(map[int]bool)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range total {
			if i == killAt {
				nodes[0].Kill()
			}
			frame := fmt.Appendf(nil, `{"type":"signal","from":"pa","data":%d}`, i)
			if err := hs[0].Deliver("r", "pa", "pb", frame); err != nil {
				refused[i] = true
			}
		}
	}()
	// Read what arrives until every accepted signal is in; the stream
	// has to go through hub A's failover.
	got := make([]int, 0, total)
	deadline := time.Now().Add(60 * time.Second)
	want := -1 // the number of accepted signals, once all were sent
	for want < 0 || len(got) < want {
		select {
		case <-sent:
			want = total - len(refused)
			sent = nil
			continue
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d signals arrived within 60s of %d accepted (%d refused); last %v",
				len(got), want, len(refused), tail(got))
		}
		f, ok := pb.NextWithin(100 * time.Millisecond)
		if !ok {
			continue
		}
		if f.Type != "signal" || f.From != "pa" {
			t.Fatalf("pb got %+v amid the stream", f)
		}
		n, err := strconv.Atoi(string(f.Data))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	pb.Quiet(t) // and no more: no duplicate after the last
	next := 0
	for i, n := range got {
		for refused[next] {
			next++
		}
		if n != next {
			t.Fatalf("signal #%d received is %d, want %d (lost, duplicated or misordered); around it: %v",
				i, n, next, got[max(0, i-5):min(len(got), i+5)])
		}
		next++
	}
	if len(refused) > 0 {
		t.Logf("%d signals refused (undeliverable) during the failover", len(refused))
	}
	if got := hs[0].nc.ConnectedUrl(); got == urls[0] {
		t.Fatal("hub A still on the killed node")
	}
	eventually(t, 10*time.Second, "everything acknowledged", func() bool {
		return hs[0].nodes.unacked(hs[1].node) == 0
	})
}

func tail(s []int) []int { return s[max(0, len(s)-5):] }
