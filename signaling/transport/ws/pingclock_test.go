package ws

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/internal/wstest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
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
	ticked := map[*Conn]int{}
	later := make(chan struct{})
	pc := pingClock{tick: func(c *Conn) {
		mu.Lock()
		defer mu.Unlock()
		if ticked[c]++; c.maxSize == 1 {
			close(later)
		}
	}}
	now := session.MonoNow()
	due := make([]*Conn, 100)
	for i := range due {
		due[i] = &Conn{}
		pc.set(due[i], now-int64(i)) // in no particular order
	}
	stopped := &Conn{}
	pc.set(stopped, now-1)
	pc.stop(stopped)
	pc.fire()
	// The timer set armed may fire too, on its own goroutine, and tick
	// some of them outside the clock's lock: wait until all were ticked,
	// then check none was ticked twice.
	allTicked := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range due {
			if ticked[c] == 0 {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(10 * time.Second); !allTicked() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // polling the ticks
	}
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
	moved := &Conn{maxSize: 1}
	pc.set(moved, session.MonoNow()+int64(time.Hour))
	pc.set(moved, session.MonoNow()+int64(20*time.Millisecond)) // the timer must follow
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

// ownConns collects the server side of every connection that joins from
// now on, to the end of the test. The clock is the process's, shared with
// connections of earlier tests that may still be closing, so a test counts
// its own.
type ownConns struct {
	mu    sync.Mutex
	conns []*Conn
}

func collectConns(t *testing.T) *ownConns {
	o := &ownConns{}
	hook := func(c *Conn) {
		o.mu.Lock()
		o.conns = append(o.conns, c)
		o.mu.Unlock()
	}
	testHookOpened.Store(&hook)
	t.Cleanup(func() { testHookOpened.Store(nil) })
	return o
}

// held counts the collected connections the clock holds, and all of them.
func (o *ownConns) held() (held, all int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	pings.mu.Lock()
	defer pings.mu.Unlock()
	for _, c := range o.conns {
		if c.pingSlot > 0 {
			held++
		}
	}
	return held, len(o.conns)
}

// The process's clock pings every connection at the handler's interval,
// and forgets a connection as soon as it closes, long before it was due.
func TestPingClockPingsConnectionsAndForgetsClosedOnes(t *testing.T) {
	// 200 ms: a peer silent for two intervals is cut, and a client's
	// reader starved for 60 ms (two of 30 ms) on a loaded machine was
	// cut, leaving the clock for good; 400 ms of silence is not a live
	// peer's.
	for _, interval := range []time.Duration{200 * time.Millisecond, time.Hour} {
		srv, h := newBenchServer(t)
		h.PingInterval = interval
		own := collectConns(t)
		var conns []*websocket.Conn
		var pinged []interface{ Load() int64 }
		for range 3 {
			a, c, _ := wstest.JoinPair(t, srv, websocket.DefaultDialer)
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
		deadline := time.Now().Add(10 * time.Second)
		// Each is on the clock once joined: the hook may run a moment after
		// the welcome went out.
		for held, all := own.held(); held != len(conns) || all != len(conns); held, all = own.held() {
			if time.Now().After(deadline) {
				t.Fatalf("the clock ticks for %d of the %d connections opened; %d are open", held, all, len(conns))
			}
			time.Sleep(time.Millisecond) // polling the count
		}
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
		for held, _ := own.held(); held != 0; held, _ = own.held() {
			if time.Now().After(deadline) {
				t.Fatalf("the clock still ticks for %d closed connections", held)
			}
			time.Sleep(time.Millisecond) // polling the count
		}
	}
}
