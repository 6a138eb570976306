//go:build linux

package evloop

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The loop is tested on real loopback TCP connections: the client side is
// a plain net.Conn, the server side wrapped by WithRawIO and read by a
// loop for a testReader.

const waitFor = 5 * time.Second

// tcpPair is a loopback connection: the client's end, and the server's,
// not yet wrapped.
func tcpPair(t *testing.T) (client net.Conn, server *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			c = nil
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c := <-accepted
	if c == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close() })
	return client, c.(*net.TCPConn)
}

// testReader hands what the loop reads to the test, and its stop.
type testReader struct {
	got     chan []byte
	take    func(b []byte) bool // what Take answers, after handing b over; nil: false
	cut     atomic.Bool
	stops   atomic.Int32
	stopped chan bool
}

func newTestReader() *testReader {
	return &testReader{got: make(chan []byte, 1024), stopped: make(chan bool, 4)}
}

func (r *testReader) Take(b []byte) bool {
	r.got <- bytes.Clone(b)
	return r.take != nil && r.take(b)
}

func (r *testReader) Cut() bool { return r.cut.Load() }

func (r *testReader) Stopped(failed bool) {
	r.stops.Add(1)
	r.stopped <- failed
}

// blockTake makes Take hold the runner up until release is closed;
// entered is closed once the first Take started.
func (r *testReader) blockTake() (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	r.take = func([]byte) bool {
		once.Do(func() { close(entered) })
		<-release
		return false
	}
	return entered, release
}

// waitStopped is how the loop stopped reading.
func (r *testReader) waitStopped(t *testing.T) (failed bool) {
	t.Helper()
	select {
	case failed = <-r.stopped:
		return failed
	case <-time.After(waitFor):
		t.Fatal("the loop did not stop reading")
		return false
	}
}

// collect receives what the loop read until it has n bytes.
func (r *testReader) collect(t *testing.T, n int) []byte {
	t.Helper()
	var all []byte
	deadline := time.After(waitFor)
	for len(all) < n {
		select {
		case b := <-r.got:
			all = append(all, b...)
		case <-deadline:
			t.Fatalf("read %d bytes of %d", len(all), n)
		}
	}
	return all
}

// readBy has a loop read a new connection's server end with r; it returns
// the client's end and the wrapped server end.
func readBy(t *testing.T, r Reader) (client net.Conn, server net.Conn) {
	t.Helper()
	client, tc := tcpPair(t)
	server = WithRawIO(tc)
	if !Read(server, r) {
		t.Fatal("the loop does not read a plain TCP connection")
	}
	return client, server
}

// pattern is n bytes that show a byte lost, doubled or out of order.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// reading counts the connections the loops read for r.
func reading(r Reader) int { return Reading(func(x Reader) bool { return x == r }) }

func TestBytesArriveAtTakeInOrder(t *testing.T) {
	r := newTestReader()
	client, _ := readBy(t, r)
	want := pattern(1 << 20)
	written := make(chan error, 1)
	go func() {
		// In pieces of all sizes, so that the loop reads several times.
		var err error
		for rest, n := want, 1; len(rest) > 0 && err == nil; n = n*3 + 7 {
			n = min(n, len(rest))
			_, err = client.Write(rest[:n])
			rest = rest[n:]
		}
		written <- err
	}()
	if got := r.collect(t, len(want)); !bytes.Equal(got, want) {
		t.Error("the bytes read are not those written, in order")
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	client.Close()
	if !r.waitStopped(t) {
		t.Error("the client's close stopped the reading with failed false")
	}
	if n := r.stops.Load(); n != 1 {
		t.Errorf("Stopped ran %d times", n)
	}
}

func TestTakeDoneStopsReading(t *testing.T) {
	r := newTestReader()
	r.take = func([]byte) bool { return true }
	client, server := readBy(t, r)
	if _, err := client.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if r.waitStopped(t) {
		t.Error("Take saying done stopped the reading with failed true")
	}
	if got := string(r.collect(t, 5)); got != "first" {
		t.Errorf("Take got %q", got)
	}
	if n := reading(r); n != 0 {
		t.Errorf("the loop still reads %d connections", n)
	}
	// What comes next is the connection's own to read: the loop took none.
	if _, err := client.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	_ = server.SetReadDeadline(time.Now().Add(waitFor))
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(server, buf, len("second"))
	if err != nil || string(buf[:n]) != "second" {
		t.Errorf("the connection read %q, %v, want second", buf[:n], err)
	}
	if len(r.got) != 0 {
		t.Error("Take got bytes after it said done")
	}
	if n := r.stops.Load(); n != 1 {
		t.Errorf("Stopped ran %d times", n)
	}
}

func TestCutStopsReading(t *testing.T) {
	r := newTestReader()
	entered, release := r.blockTake()
	client, server := readBy(t, r)
	if _, err := client.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	<-entered
	// While the first bytes are handled, more come, and the connection
	// starts closing: its reading is shut down, as the ws package's
	// endRead does, which makes it ready.
	if _, err := client.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	r.cut.Store(true)
	if err := server.(interface{ CloseRead() error }).CloseRead(); err != nil {
		t.Fatal(err)
	}
	close(release)
	if !r.waitStopped(t) {
		t.Error("a cut stopped the reading with failed false")
	}
	if got := string(r.collect(t, 5)); got != "first" || len(r.got) != 0 {
		t.Errorf("Take got %q and %d more, want first alone", got, len(r.got))
	}
}

func TestReadNeedsAConnWrappedByWithRawIO(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	client, server := tcpPair(t)
	for name, c := range map[string]net.Conn{
		"net.Pipe":          a,
		"tls.Conn":          tls.Client(client, &tls.Config{InsecureSkipVerify: true}),
		"unwrapped TCPConn": server,
	} {
		if Read(c, newTestReader()) {
			t.Errorf("the loop reads a %s", name)
		}
	}
}

func TestRestrictZeroLeavesConnectionsToTheirCallers(t *testing.T) {
	r := newTestReader()
	client, tc := tcpPair(t)
	server := WithRawIO(tc)
	restore := Restrict(0)
	if Read(server, r) {
		restore()
		t.Fatal("a loop reads with none allowed")
	}
	restore()
	if !Read(server, r) {
		t.Fatal("restore did not bring the loops back")
	}
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	r.collect(t, 1)
}

func TestReadingCountsTheConnectionsUntilTheyStop(t *testing.T) {
	r1, r2 := newTestReader(), newTestReader()
	c1, _ := readBy(t, r1)
	c2, _ := readBy(t, r2)
	if n1, n2 := reading(r1), reading(r2); n1 != 1 || n2 != 1 {
		t.Fatalf("reading %d and %d, want 1 each", n1, n2)
	}
	if n := Reading(func(x Reader) bool { return x == r1 || x == r2 }); n != 2 {
		t.Fatalf("reading %d of both, want 2", n)
	}
	c1.Close()
	r1.waitStopped(t)
	if n1, n2 := reading(r1), reading(r2); n1 != 0 || n2 != 1 {
		t.Errorf("after the first stopped: reading %d and %d, want 0 and 1", n1, n2)
	}
	c2.Close()
	r2.waitStopped(t)
	if n := reading(r2); n != 0 {
		t.Errorf("after both stopped: reading %d", n)
	}
}

func TestAStalledRunnerHoldsUpNoOtherConnection(t *testing.T) {
	t.Cleanup(Restrict(1)) // both connections on one loop
	held := newTestReader()
	entered, release := held.blockTake()
	defer close(release)
	hc, _ := readBy(t, held)
	other := newTestReader()
	oc, _ := readBy(t, other)
	if _, err := hc.Write([]byte("stall")); err != nil {
		t.Fatal(err)
	}
	<-entered
	// The runner is held up in Take; the watchdog hands the loop to
	// another runner, which reads the other connection meanwhile.
	for _, msg := range []string{"one", "two"} {
		if _, err := oc.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := string(other.collect(t, len(msg))); got != msg {
			t.Fatalf("read %q, want %q", got, msg)
		}
	}
}

// rawWriter is what the ws package writes through.
type rawWriter interface {
	TryWrite(b []byte) (n int, held bool, err error)
	FinishWrite(rest []byte, deadline time.Time) error
}

// heldWrite fills a connection whose client does not read until a
// TryWrite writes only part of its bytes; it returns the client's end,
// the server's writer, what was written so far, and the rest.
func heldWrite(t *testing.T) (client net.Conn, w rawWriter, written, rest []byte) {
	t.Helper()
	client, tc := tcpPair(t)
	_ = tc.SetWriteBuffer(4 << 10)
	_ = client.(*net.TCPConn).SetReadBuffer(64 << 10)
	w = WithRawIO(tc).(rawWriter)
	all := pattern(8 << 20)
	const chunk = 64 << 10
	for off := 0; off+chunk <= len(all); off += chunk {
		n, held, err := w.TryWrite(all[off : off+chunk])
		if err != nil {
			t.Fatal(err)
		}
		if held {
			return client, w, all[:off+n], all[off+n : off+chunk]
		}
		if n != chunk {
			t.Fatalf("TryWrite wrote %d of %d without holding the rest", n, chunk)
		}
	}
	t.Fatal("the socket took every write of a peer that does not read")
	return nil, nil, nil, nil
}

func TestAHeldWriteIsFinishedOnceThePeerReads(t *testing.T) {
	client, w, written, rest := heldWrite(t)
	// Held, the connection takes no other write.
	if n, held, err := w.TryWrite([]byte("cut in")); n != 0 || held || err != nil {
		t.Fatalf("TryWrite during a held write: %d, %v, %v", n, held, err)
	}
	t.Logf("held after %d bytes, %d to go", len(written), len(rest))
	want := append(bytes.Clone(written), rest...)
	read := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(want))
		_ = client.SetReadDeadline(time.Now().Add(waitFor))
		n, _ := io.ReadFull(client, b)
		read <- b[:n]
	}()
	if err := w.FinishWrite(rest, time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	if got := <-read; !bytes.Equal(got, want) {
		t.Errorf("the peer read %d bytes, not the %d written in order", len(got), len(want))
	}
	// Finished, the connection writes again.
	if n, held, err := w.TryWrite([]byte("after")); n != 5 || held || err != nil {
		t.Errorf("TryWrite after the held write: %d, %v, %v", n, held, err)
	}
}

func TestAHeldWriteFailsAtItsDeadlineIfThePeerDoesNotRead(t *testing.T) {
	_, w, _, rest := heldWrite(t)
	// More than the socket's buffers take, whatever room they made since.
	rest = append(rest, pattern(8<<20)...)
	finished := make(chan error, 1)
	go func() { finished <- w.FinishWrite(rest, time.Now().Add(50*time.Millisecond)) }()
	select {
	case err := <-finished:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("FinishWrite to a peer that reads nothing: %v", err)
		}
	case <-time.After(waitFor):
		t.Error("FinishWrite did not return at its deadline") // closing the conns ends it
	}
}
