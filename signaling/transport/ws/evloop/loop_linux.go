package evloop

import (
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// evLoop reads connections of plain TCP peers (see rawConn) for their
// Readers; the process has one per P, and deals the connections to them in
// turn. An epoll instance says which connections have bytes, and one
// goroutine, the runner, reads them and hands the bytes to their Readers
// (a WebSocket's parses its frames and hands them to its session, which
// writes what it relays on the same goroutine). A goroutine per connection
// would cost an idle peer its stack and read buffer, and every frame a
// goroutine switch and a second read that finds nothing; here an idle
// peer costs its frameReader, and a frame one epoll_wait, one read and
// one epoll_ctl.
//
// Each connection is registered EPOLLONESHOT: it is handed to one runner
// at a time, and re-armed once its bytes were handled, so its frames are
// handled in order. Handling a frame may block: a sender waits up to
// stallTimeout for room in a slow reader's queue, and a cluster hub waits
// for NATS. A runner busy with one connection for longer than loopStall
// is retired, and a new one serves everyone else meanwhile; the old one
// finishes that connection and ends.
type evLoop struct {
	epfd int
	ep   syscall.RawConn // epfd, waited on through the runtime's poller
	file *os.File        // keeps epfd open

	mu       sync.Mutex
	conns    map[uint64]*loopConn
	nextID   uint64
	runner   *loopRunner // the one not retired
	watching bool        // the watchdog runs
}

// loopStall is how long a runner may be busy with one connection before
// another takes over the rest; loopWatch is how often that is checked.
const (
	loopStall = 10 * time.Millisecond
	loopWatch = 10 * time.Millisecond
)

// loopReadSize is how much a runner reads from a connection at once.
const loopReadSize = 64 << 10

// loopRunner is the state of one runner goroutine.
type loopRunner struct {
	busy    atomic.Int64 // session.MonoNow since it handles a connection, or 0
	retired atomic.Bool
}

// loopConn is a connection the loop reads.
type loopConn struct {
	// mu is held while a runner serves the connection. EPOLLONESHOT
	// already hands it to one runner at a time, but through the kernel,
	// where the race detector cannot see it.
	mu sync.Mutex
	id uint64
	fd int
	r  Reader
}

// Reader is the read side of a connection a loop reads.
type Reader interface {
	// Take handles bytes read from the connection, on the loop's runner;
	// true says the reading is over.
	Take(b []byte) (done bool)
	// Cut reports whether the reading is to stop now: the connection is
	// closing. Shutting its reading down makes it ready, so the loop
	// sees this without a deadline.
	Cut() bool
	// Stopped runs, on a goroutine of its own, once the loop no longer
	// reads the connection; failed says it failed, ended or was cut,
	// rather than Take saying done.
	Stopped(failed bool)
}

// The process's loops, one per P, started with the first connection
// they read; connections are dealt to them in turn. Tests swap the loops
// (useLoops), hence the lock.
var (
	loopOnce sync.Once
	loopsMu  sync.RWMutex
	theLoops []*evLoop
	loopNext atomic.Uint32
)

// Read has a loop read conn with r from now on; it reports false when conn
// is not a plain TCP connection wrapped by WithRawIO, or there is no loop:
// then the caller reads it.
func Read(conn net.Conn, r Reader) bool {
	rc, ok := conn.(*rawConn)
	if !ok {
		return false
	}
	ls := loops()
	if len(ls) == 0 {
		return false
	}
	l := ls[int(loopNext.Add(1))%len(ls)]
	return l.add(rc, r)
}

// Restrict deals the connections that start being read from now on to the
// first n loops only (none for 0: their callers read them), until restore;
// for tests, which need connections to share a runner, or none to.
func Restrict(n int) (restore func()) {
	all := loops()
	useLoops(all[:min(n, len(all))])
	return func() { useLoops(all) }
}

// Reading counts the connections the loops read whose Reader is one that
// match accepts; for tests, which check that connections are let go.
func Reading(match func(Reader) bool) (n int) {
	for _, l := range loops() {
		l.mu.Lock()
		for _, lc := range l.conns {
			if match(lc.r) {
				n++
			}
		}
		l.mu.Unlock()
	}
	return n
}

// loops starts the loops once, and returns them.
func loops() []*evLoop {
	loopOnce.Do(func() {
		var ls []*evLoop
		for range runtime.GOMAXPROCS(0) {
			if l, err := newEvLoop(); err == nil {
				ls = append(ls, l)
			}
		}
		useLoops(ls)
	})
	loopsMu.RLock()
	defer loopsMu.RUnlock()
	return theLoops
}

// useLoops makes ls the loops new connections are dealt to.
func useLoops(ls []*evLoop) {
	loopsMu.Lock()
	defer loopsMu.Unlock()
	theLoops = ls
}

// newEvLoop creates the epoll instance and starts the runner.
func newEvLoop() (*evLoop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	// Non-blocking, so os.NewFile registers it with the runtime's
	// poller: the runner parks until an epoll event is ready, like any
	// goroutine reading a socket, without a thread blocked in epoll_wait.
	f := os.NewFile(uintptr(epfd), "epoll")
	ep, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	l := &evLoop{epfd: epfd, ep: ep, file: f, conns: map[uint64]*loopConn{}, runner: &loopRunner{}}
	go l.run(l.runner)
	return l, nil
}

// add registers rc, read with r.
func (l *evLoop) add(rc *rawConn, r Reader) bool {
	lc := &loopConn{r: r, fd: -1}
	_ = rc.raw.Control(func(fd uintptr) { lc.fd = int(fd) })
	if lc.fd < 0 {
		return false
	}
	l.mu.Lock()
	l.nextID++
	lc.id = l.nextID
	l.conns[lc.id] = lc
	if !l.watching {
		l.watching = true
		go l.watch()
	}
	l.mu.Unlock()
	if l.arm(lc, syscall.EPOLL_CTL_ADD) != nil {
		l.mu.Lock()
		delete(l.conns, lc.id)
		l.mu.Unlock()
		return false
	}
	return true
}

// arm (re-)registers lc for one event.
func (l *evLoop) arm(lc *loopConn, op int) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT}
	*(*uint64)(unsafe.Pointer(&ev.Fd)) = lc.id
	return syscall.EpollCtl(l.epfd, op, lc.fd, &ev)
}

// run is a runner: it takes one ready connection at a time, so that a
// runner retired while busy holds up no other connection.
func (l *evLoop) run(r *loopRunner) {
	buf := make([]byte, loopReadSize)
	var evs [1]syscall.EpollEvent
	for !r.retired.Load() {
		var n int
		err := l.ep.Read(func(fd uintptr) bool {
			n = epollWaitNow(int(fd), evs[:])
			return n != 0 // 0: park until the epoll instance is readable
		})
		if err != nil || n < 0 {
			return // the epoll instance failed: no way on
		}
		l.mu.Lock()
		lc := l.conns[*(*uint64)(unsafe.Pointer(&evs[0].Fd))]
		l.mu.Unlock()
		if lc == nil {
			continue // ended meanwhile
		}
		r.busy.Store(monoNow())
		l.serve(lc, buf)
		r.busy.Store(0)
	}
}

// epollWaitNow takes the ready events without waiting, with a raw system
// call (see rawConn); it returns -1 on a failure other than EINTR.
func epollWaitNow(epfd int, evs []syscall.EpollEvent) int {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
	switch e {
	case 0:
		return int(n)
	case syscall.EINTR:
		return 0
	}
	return -1
}

// serve reads what lc has and handles its frames, then re-arms it, or
// ends it.
func (l *evLoop) serve(lc *loopConn, buf []byte) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.r.Cut() {
		l.stop(lc, true)
		return
	}
	// Read on the descriptor itself: it stays open until ended, which
	// runs after stop, closes it.
	n, err := rawSyscallRW(syscall.SYS_READ, uintptr(lc.fd), buf)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		n = 0
	case err != nil || n == 0: // failed, or the end of the stream
		l.stop(lc, true)
		return
	}
	if n > 0 && lc.r.Take(buf[:n]) {
		l.stop(lc, false)
		return
	}
	if l.arm(lc, syscall.EPOLL_CTL_MOD) != nil {
		l.stop(lc, true)
	}
}

// stop ends the loop's reading of lc; failed says the connection failed
// (or was cut) rather than its Reader being done. What follows (for a
// WebSocket: the session going away or leaving, the close frame, closing
// the socket) may wait, so it runs on a goroutine of its own.
func (l *evLoop) stop(lc *loopConn, failed bool) {
	_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, lc.fd, nil)
	l.mu.Lock()
	delete(l.conns, lc.id)
	l.mu.Unlock()
	go lc.r.Stopped(failed)
}

// watch retires a runner busy with one connection for longer than
// loopStall, and starts another; it runs while the loop reads any
// connection.
func (l *evLoop) watch() {
	t := time.NewTicker(loopWatch)
	defer t.Stop()
	for range t.C {
		l.mu.Lock()
		if len(l.conns) == 0 {
			l.watching = false
			l.mu.Unlock()
			return
		}
		if since := l.runner.busy.Load(); since != 0 && monoNow()-since > int64(loopStall) {
			l.runner.retired.Store(true)
			l.runner = &loopRunner{}
			go l.run(l.runner)
		}
		l.mu.Unlock()
	}
}

// monoNow is the monotonic clock in nanoseconds since the process started,
// never 0 once a runner is busy (busy's 0 means idle).
func monoNow() int64 { return int64(time.Since(monoStart)) + 1 }

var monoStart = time.Now()
