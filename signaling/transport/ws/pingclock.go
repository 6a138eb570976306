package ws

import (
	"container/heap"
	"sync"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
)

// pingClock is the one timer behind every WebSocket connection's pings.
// A time.AfterFunc per connection starts a goroutine each time it fires,
// and with acknowledgement pings due every ackDelay per active peer,
// 3000 peers in rooms started a thousand goroutines a second whose
// creation and scheduling cost more CPU than the pings themselves. Here
// one firing serves every connection due by then, and firings are at
// least pingClockGap apart: a connection's ping is late by that at most.
type pingClock struct {
	tick     func(*Conn) // for tests; nil: (*Conn).pingTick
	mu       sync.Mutex
	due      pingQueue
	timer    *time.Timer
	armedAt  int64 // session.MonoNow the timer fires at; 0 when it is not armed
	lastFire int64 // session.MonoNow of the last firing
}

// pingClockGap is the least time between two firings of the pingClock.
const pingClockGap = 5 * time.Millisecond

// pings is the process's pingClock.
var pings pingClock

// set makes the clock call c.pingTick at (session.MonoNow), instead of when it
// was to.
func (pc *pingClock) set(c *Conn, at int64) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if c.pingSlot > 0 {
		pc.due[c.pingSlot-1].at = at
		heap.Fix(&pc.due, c.pingSlot-1)
	} else {
		heap.Push(&pc.due, pingEntry{c: c, at: at})
	}
	pc.armLocked()
}

// stop forgets c. A firing already under way may still call its pingTick,
// which does nothing on a closing connection.
func (pc *pingClock) stop(c *Conn) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if c.pingSlot > 0 {
		heap.Remove(&pc.due, c.pingSlot-1)
	}
}

// armLocked makes the timer fire when the earliest connection is due,
// but not sooner than pingClockGap after the last firing; the caller
// holds pc.mu.
func (pc *pingClock) armLocked() {
	if len(pc.due) == 0 {
		return
	}
	at := max(pc.due[0].at, pc.lastFire+int64(pingClockGap))
	if pc.armedAt != 0 && pc.armedAt <= at {
		return // it fires soon enough
	}
	d := time.Duration(at - session.MonoNow())
	if pc.timer == nil {
		pc.timer = time.AfterFunc(d, pc.fire)
	} else {
		pc.timer.Reset(d)
	}
	pc.armedAt = at
}

// fire ticks every connection that is due, outside the lock: a tick
// takes the connection's locks and may write its ping.
func (pc *pingClock) fire() {
	pc.mu.Lock()
	now := session.MonoNow()
	pc.armedAt, pc.lastFire = 0, now
	var due []*Conn
	for len(pc.due) > 0 && pc.due[0].at <= now {
		due = append(due, heap.Pop(&pc.due).(pingEntry).c)
	}
	pc.armLocked()
	pc.mu.Unlock()
	for _, c := range due {
		if pc.tick != nil {
			pc.tick(c)
		} else {
			c.pingTick()
		}
	}
}

// pingEntry is a connection in the pingClock and when it is due.
type pingEntry struct {
	c  *Conn
	at int64
}

// pingQueue is a min-heap of pingEntry by at; each connection's pingSlot
// is one more than its index in it (0: not in it).
type pingQueue []pingEntry

func (q pingQueue) Len() int           { return len(q) }
func (q pingQueue) Less(i, j int) bool { return q[i].at < q[j].at }

func (q pingQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].c.pingSlot, q[j].c.pingSlot = i+1, j+1
}

func (q *pingQueue) Push(x any) {
	e := x.(pingEntry)
	e.c.pingSlot = len(*q) + 1
	*q = append(*q, e)
}

func (q *pingQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = pingEntry{} // let the connection go
	*q = old[:len(old)-1]
	e.c.pingSlot = 0
	return e
}
