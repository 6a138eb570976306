package caddytest

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// readAll forwards a client's frames to a channel (answering the server's
// pings as it reads, as browsers do) until the connection ends.
func readAll(c *wsClient) <-chan frame {
	out := make(chan frame, 1024)
	go func() {
		defer close(out)
		for {
			f, err := c.readFor(time.Minute)
			if err != nil {
				return
			}
			out <- f
		}
	}()
	return out
}

// nextOfType waits for a frame of the given type, skipping others.
func nextOfType(t *testing.T, frames <-chan frame, typ string, within time.Duration) frame {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("connection ended while waiting for %q", typ)
			}
			if f.Type == typ {
				return f
			}
		case <-deadline:
			t.Fatalf("no %q frame within %s", typ, within)
		}
	}
}

// A sender held back by a stalled reader for longer than two ping intervals
// is healthy: only the stalled reader is dropped (README: a flood is paced
// to its readers, and only the flooding peer is held back).
func TestHeldBackSenderStaysConnected(t *testing.T) {
	loadCaddyfile(t, `
http://localhost:9080 {
	webrtc_signaling {
		max_message_size 64KiB
		# These tests relay floods on purpose: no frame rate limit.
		limits {
			frames_per_second 1000000
			burst 1000000
		}
		ping_interval 1s
	}
}
`, false)
	url := "ws://localhost:9080/?room=heldback"
	slow := dialSlowReader(t, url)
	slowID := slow.expect("welcome").ID
	// The slow peer reads nothing more but keeps sending, so it stays alive
	// as far as pings go: it is dropped only for not reading.
	keepAlive := time.NewTicker(250 * time.Millisecond)
	defer keepAlive.Stop()
	go func() {
		for range keepAlive.C {
			if slow.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)) != nil {
				return
			}
		}
	}()
	filler, _ := join(t, url)
	fillerFrames := readAll(filler)
	sender, _ := join(t, url)
	senderFrames := readAll(sender)
	nextOfType(t, fillerFrames, "peer-joined", frameWait)

	// The filler fills the slow peer's queue until it is held back itself:
	// its ping is then not answered, as the server is still busy with the
	// signal before it.
	payload := strings.Repeat("x", 60<<10)
	held := false
	for i := 0; i < 2000 && !held; i++ {
		filler.signal(slowID, payload)
		filler.send(map[string]string{"type": "ping"})
		select {
		case <-waitPong(fillerFrames):
		case <-time.After(time.Second):
			held = true
		}
	}
	if !held {
		t.Fatal("the slow peer's queue never filled up")
	}
	// One broadcast now waits for the full queue, for up to the stall
	// timeout, while the sender sends nothing else and answers pings.
	sender.send(map[string]any{"type": "broadcast", "data": "hello"})
	if f := nextOfType(t, senderFrames, "peer-left", 30*time.Second); f.ID != slowID {
		t.Fatalf("sender got peer-left %q, want the slow peer %q", f.ID, slowID)
	}
	sender.send(map[string]string{"type": "ping"})
	nextOfType(t, senderFrames, "pong", frameWait)
}

// waitPong returns a channel that yields once a pong arrives.
func waitPong(frames <-chan frame) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for f := range frames {
			if f.Type == "pong" {
				close(done)
				return
			}
		}
	}()
	return done
}
