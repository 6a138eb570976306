package signaling

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/gorilla/websocket"
)

// countPings answers ws's pings as gorilla would, counting them.
func countPings(ws *websocket.Conn) *atomic.Int64 {
	var n atomic.Int64
	ws.SetPingHandler(func(data string) error {
		n.Add(1)
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	return &n
}

// drain reads ws until it fails, so that its pings are answered.
func drain(ws *websocket.Conn) {
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
	}
}

// One firing ticks every connection due by then, once; one due later is
// ticked when it is due; a stopped one is not.
func TestPingClockTicksWhatIsDue(t *testing.T) {
	var mu sync.Mutex
	ticked := map[*wsConn]int{}
	later := make(chan struct{})
	pc := pingClock{tick: func(c *wsConn) {
		mu.Lock()
		defer mu.Unlock()
		if ticked[c]++; c.maxSize == 1 {
			close(later)
		}
	}}
	now := monoNow()
	due := make([]*wsConn, 100)
	for i := range due {
		due[i] = &wsConn{}
		pc.set(due[i], now-int64(i)) // in no particular order
	}
	stopped := &wsConn{}
	pc.set(stopped, now-1)
	pc.stop(stopped)
	pc.fire()
	mu.Lock()
	for i, c := range due {
		if ticked[c] != 1 {
			t.Errorf("connection %d, due, was ticked %d times", i, ticked[c])
		}
	}
	if ticked[stopped] != 0 {
		t.Errorf("a stopped connection was ticked %d times", ticked[stopped])
	}
	mu.Unlock()
	moved := &wsConn{maxSize: 1}
	pc.set(moved, monoNow()+int64(time.Hour))
	pc.set(moved, monoNow()+int64(20*time.Millisecond)) // the timer must follow
	select {
	case <-later:
	case <-time.After(10 * time.Second):
		t.Fatal("a connection due in 20 ms was not ticked in 10 s")
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if len(pc.due) != 0 {
		t.Fatalf("the clock still holds %d connections", len(pc.due))
	}
}

// clockHolds tells how many connections the process's pingClock ticks for.
func clockHolds() int {
	pings.mu.Lock()
	defer pings.mu.Unlock()
	return len(pings.due)
}

// The process's clock pings every connection at the handler's interval,
// and forgets a connection as soon as it closes, long before it was due.
func TestPingClockPingsConnectionsAndForgetsClosedOnes(t *testing.T) {
	for _, interval := range []time.Duration{30 * time.Millisecond, time.Hour} {
		srv, h := newBenchServer(t)
		h.PingInterval = caddy.Duration(interval)
		before := clockHolds()
		var conns []*websocket.Conn
		var pinged []interface{ Load() int64 }
		for range 3 {
			a, c, _ := joinPair(t, srv, websocket.DefaultDialer)
			conns = append(conns, a, c)
			if interval < time.Second {
				// Answering pings from the start, as live peers do: one
				// silent for two intervals is cut.
				for _, ws := range []*websocket.Conn{a, c} {
					pinged = append(pinged, countPings(ws))
					go drain(ws)
				}
			}
		}
		if n := clockHolds() - before; n != len(conns) {
			t.Fatalf("the clock ticks for %d more connections; %d are open", n, len(conns))
		}
		deadline := time.Now().Add(10 * time.Second)
		if interval < time.Second {
			for i := range conns {
				for pinged[i].Load() < 3 {
					if time.Now().After(deadline) {
						t.Fatalf("connection %d got %d pings in 10 s at a %v interval", i, pinged[i].Load(), interval)
					}
					time.Sleep(time.Millisecond) // polling the count
				}
			}
		}
		for _, ws := range conns {
			ws.Close()
		}
		for clockHolds() != before {
			if time.Now().After(deadline) {
				t.Fatalf("the clock still ticks for %d closed connections", clockHolds()-before)
			}
			time.Sleep(time.Millisecond) // polling the count
		}
	}
}
