package natshub

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/natshub/link"
)

// A node's own outage, however long, makes it forget no other node, nor
// the frames it keeps for one: only once connected for node_timeout does
// it judge others, as tickLinks and sweeps do.
func TestNodesAreNotForgottenThroughOwnOutage(t *testing.T) {
	h := &Hub{node: "self"}
	h.cfg.nodeTimeout = 100 * time.Millisecond
	var nt nodeTable
	nt.init(h)
	nt.lastSeen["other"] = time.Now().Add(-time.Hour)
	nt.links["other"] = link.NewSender("self", 1)
	if gone := nt.forget(); len(gone) != 0 {
		t.Fatalf("forgot %v while not connected", gone)
	}
	nt.connected()
	if gone := nt.forget(); len(gone) != 0 {
		t.Fatalf("forgot %v just after connecting", gone)
	}
	nt.since = time.Now().Add(-time.Second)
	if gone := nt.forget(); len(gone) != 1 || nt.links["other"] != nil {
		t.Fatalf("forgot %v once connected for long; want other, and its link", gone)
	}
}

// A node that sends is alive even while its heartbeats lag behind what it
// sends (a burst of kept frames after a reconnect, through a slow NATS
// server): no sweep, no dropped link, no forgetting, and its falling
// silent later is news again.
func TestANodeThatSendsIsAliveWithoutHeartbeats(t *testing.T) {
	h := &Hub{node: "self"}
	h.cfg.nodeTimeout = 100 * time.Millisecond
	var nt nodeTable
	nt.init(h)
	nt.connected()
	nt.since = time.Now().Add(-time.Hour) // judging
	nt.lastSeen["other"] = time.Now().Add(-time.Hour)
	nt.links["other"] = link.NewSender("self", 1)
	if !nt.dead("other") {
		t.Fatal("a node silent for an hour is not dead")
	}
	if dead := nt.newlyDead(); len(dead) != 1 {
		t.Fatalf("newly dead %v, want other", dead)
	}
	nt.heard("other")
	if nt.dead("other") {
		t.Fatal("a node that just sent is dead")
	}
	nt.tickLinks()
	if nt.links["other"] == nil {
		t.Fatal("the link to a node that just sent was dropped")
	}
	if gone := nt.forget(); len(gone) != 0 {
		t.Fatalf("forgot %v, which just sent", gone)
	}
	if dead := nt.newlyDead(); len(dead) != 0 {
		t.Fatalf("newly dead %v, which just sent", dead)
	}
	// Silent again, for longer than node_timeout: news again.
	nt.sent.Range(func(n, v any) bool {
		v.(*atomic.Int64).Store(time.Since(nt.epoch.Add(time.Hour)).Nanoseconds())
		return true
	})
	if dead := nt.newlyDead(); len(dead) != 1 || !nt.dead("other") {
		t.Fatalf("newly dead %v after falling silent again, want other", dead)
	}
	if gone := nt.forget(); len(gone) != 1 {
		t.Fatalf("forgot %v, want other", gone)
	}
	if _, ok := nt.sent.Load("other"); ok {
		t.Fatal("a forgotten node's last sending is kept")
	}
}
