package natshub

import "sync"

// Bounds of an inbox: what waits for one tunnel end, or for one room
// whose deliveries wait for a local sender, on this node. A session holds
// at most 256 frames and 1 MiB for its peer, and a sender waits at most
// 5 s for a slow reader; four times that is room for a burst (100 frames
// at the default limits) and the rest of the wait. More than that is a
// flood that nobody can take in order: the inbox's owner gives up.
const (
	maxInbox      = 1024
	maxInboxBytes = 4 << 20
)

// inbox runs jobs in order on a goroutine of its own that runs only while
// jobs are queued, so an idle inbox costs no goroutine. The dispatcher
// (relay.go) hands it the messages whose handling may wait, and goes on
// with the others'.
type inbox struct {
	mu      sync.Mutex
	jobs    []inboxJob
	bytes   int
	running bool
}

// inboxJob is a job and the size of the message it handles.
type inboxJob struct {
	run  func()
	size int
}

// push queues run, for a message of size bytes; it reports false,
// queuing nothing, when the inbox holds maxInbox jobs or maxInboxBytes.
// An empty inbox takes a job of any size.
func (b *inbox) push(run func(), size int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.jobs) >= maxInbox || len(b.jobs) > 0 && b.bytes+size > maxInboxBytes {
		return false
	}
	b.addLocked(run, size)
	return true
}

// pushLast queues run whatever the bounds: the last job of an inbox whose
// owner is done, such as telling a tunnel's receiver it closed.
func (b *inbox) pushLast(run func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addLocked(run, 0)
}

func (b *inbox) addLocked(run func(), size int) {
	b.jobs = append(b.jobs, inboxJob{run: run, size: size})
	b.bytes += size
	if !b.running {
		b.running = true
		go b.drain()
	}
}

// busy says whether jobs are queued or running: until it is over, what
// comes after them must be queued too, to keep the order.
func (b *inbox) busy() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running
}

// drain runs the jobs until none is left.
func (b *inbox) drain() {
	for {
		b.mu.Lock()
		if len(b.jobs) == 0 {
			b.running, b.jobs = false, nil
			b.mu.Unlock()
			return
		}
		j := b.jobs[0]
		b.jobs[0] = inboxJob{}
		b.jobs = b.jobs[1:]
		b.bytes -= j.size
		b.mu.Unlock()
		j.run()
	}
}
