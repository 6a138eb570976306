package session

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

type eventLog struct {
	mu  sync.Mutex
	got []string
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := ev.Type + ":" + ev.Peer.ID
	if ev.Reason != "" {
		s += ":" + ev.Reason
	}
	l.got = append(l.got, s)
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.got, " ")
}

// A room's events with the memory hub, each once: the first join starts
// the room, the last leave finishes it, peer_left says how each ended.
func TestEvents(t *testing.T) {
	cfg := testConfig(0)
	var log eventLog
	cfg.Events = log.add
	a := joined(t, cfg, "r", "ip", newHeldTransport())
	b := joined(t, cfg, "r", "ip", newHeldTransport())
	c := joined(t, cfg, "r", "ip", newHeldTransport())
	b.End(wire.CloseTooSlow, "slow", false)
	b.Leave()
	c.Lost(c.tr, false) // away: no event until the window runs out or it resumes
	if w := c.Resume(newHeldTransport(), 0, 0, func([]wire.PeerInfo, string, uint64) []byte { return []byte("w") }); w == nil {
		t.Fatal("resume failed")
	}
	c.End(4406, "removed", false)
	c.Leave()
	a.End(wire.CloseNormal, "left", false)
	a.Leave()
	a.Leave()
	want := strings.Join([]string{
		"room_started:", "peer_joined:" + a.ID(), "peer_joined:" + b.ID(), "peer_joined:" + c.ID(),
		"peer_left:" + b.ID() + ":slow", "peer_resumed:" + c.ID(), "peer_left:" + c.ID() + ":removed",
		"peer_left:" + a.ID() + ":left", "room_finished:",
	}, " ")
	// Room events carry the peer whose join or leave caused them; the
	// Caddy face leaves it out of the webhook's body.
	got := strings.NewReplacer("room_started:"+a.ID(), "room_started:", "room_finished:"+a.ID(), "room_finished:").Replace(log.String())
	if got != want {
		t.Fatalf("events\n%s\nwant\n%s", got, want)
	}
}

func TestLeftReason(t *testing.T) {
	for code, want := range map[int]string{1000: "left", 1001: "shutdown", 4404: "room_closed", 4406: "removed",
		4408: "slow", 4410: "replaced", 4413: "too_large", 4429: "rate_limited", 1011: "error"} {
		if got := LeftReason(code); got != want {
			t.Errorf("LeftReason(%d) = %s, want %s", code, got, want)
		}
	}
}

// A lost peer not resumed within the window leaves as "lost".
func TestEventLost(t *testing.T) {
	cfg := testConfig(0)
	cfg.ResumeWindow = time.Millisecond
	left := make(chan Event, 4)
	cfg.Events = func(ev Event) {
		if ev.Type == EventPeerLeft {
			left <- ev
		}
	}
	s := joined(t, cfg, "r", "ip", newHeldTransport())
	s.Lost(s.tr, false)
	select {
	case ev := <-left:
		if ev.Reason != "lost" || ev.Peer.ID != s.ID() {
			t.Fatalf("peer_left %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no peer_left after the resume window")
	}
}
