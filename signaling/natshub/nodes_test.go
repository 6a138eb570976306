package natshub

import (
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
