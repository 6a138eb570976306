package natshub

import "sync"

// inbox runs jobs in order on a goroutine of its own that runs only while
// jobs are queued, so an idle inbox costs no goroutine. The dispatcher
// (relay.go) hands inboxes what may wait (for a slow reader, a session,
// NATS), and goes on with the others' messages: each local peer has one
// for what other servers send it, each tunnel end one for what its far
// end sends.
type inbox struct {
	maxJobs, maxBytes int // bounds of push; set by the owner

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
// queuing nothing, when the inbox holds maxJobs jobs or maxBytes. An
// empty inbox takes a job of any size.
func (b *inbox) push(run func(), size int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.jobs) >= b.maxJobs || len(b.jobs) > 0 && b.bytes+size > b.maxBytes {
		return false
	}
	b.addLocked(run, size)
	return true
}

// idle tells whether no job waits or runs.
func (b *inbox) idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.running
}

// pushAnyway queues run whatever the bounds, for a job there is one of
// per thing that happens (a tunnel's close, a room's change), not per
// message.
func (b *inbox) pushAnyway(run func()) {
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
