package natshub

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blackhole forwards TCP connections on loopback to target until frozen:
// then it drops every byte both ways and holds new connections open
// without answering, closing nothing, as a host that vanished would.
type blackhole struct {
	l      net.Listener
	target string
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bh := &blackhole{l: l, target: target}
	t.Cleanup(bh.close)
	go bh.serve()
	return bh
}

func (bh *blackhole) url() string { return "nats://" + bh.l.Addr().String() }

func (bh *blackhole) serve() {
	for {
		c, err := bh.l.Accept()
		if err != nil {
			return
		}
		bh.track(c)
		if bh.frozen.Load() {
			go func() { _, _ = io.Copy(io.Discard, c) }()
			continue
		}
		up, err := net.Dial("tcp", bh.target)
		if err != nil {
			c.Close()
			continue
		}
		bh.track(up)
		go bh.pipe(c, up)
		go bh.pipe(up, c)
	}
}

func (bh *blackhole) track(c net.Conn) {
	bh.mu.Lock()
	bh.conns = append(bh.conns, c)
	bh.mu.Unlock()
}

// pipe copies from src to dst, dropping what it reads while frozen.
func (bh *blackhole) pipe(src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			dst.Close()
			return
		}
		if !bh.frozen.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				src.Close()
				return
			}
		}
	}
}

func (bh *blackhole) close() {
	bh.l.Close()
	bh.mu.Lock()
	defer bh.mu.Unlock()
	for _, c := range bh.conns {
		c.Close()
	}
}

// lostNATS is what Caddy logs when it notices its NATS connection gone.
const lostNATS = "lost NATS connection"

// A NATS that vanishes without closing the connection is noticed within
// 10 s (nats.go's pings); meanwhile and after, the connected peer stays,
// newcomers are refused with `unavailable`, and once NATS answers again
// the server admits peers within 5 s.
func TestCaddyProcessNoticesASilentNATS(t *testing.T) {
	srv := startNATS(t)
	bh := newBlackhole(t, srv.Srv.Addr().String())
	a := startCaddy(t, natsConf("silent", 0, bh.url()))
	pa, _ := joinEventually(t, a, "r", 15*time.Second)
	if strings.Contains(a.Log(), lostNATS) {
		t.Fatal("the connection was lost before the test cut it")
	}
	start := time.Now()
	bh.frozen.Store(true)
	eventually(t, 10*time.Second+2*time.Second, "Caddy noticing the silent NATS", func() bool {
		return strings.Contains(a.Log(), lostNATS)
	})
	t.Logf("noticed after %s", time.Since(start).Round(time.Millisecond))
	c, err := dialRaw(t, a, "r")
	if err != nil {
		t.Fatal(err)
	}
	if f, err := first(c); err != nil || f.Code != "unavailable" {
		t.Fatalf("a newcomer got %+v, %v; want unavailable", f, err)
	}
	pa.quietFor(time.Second)
	bh.frozen.Store(false)
	pb, took := joinEventually(t, a, "r", 5*time.Second)
	t.Logf("admits peers %s after NATS answers again", took.Round(time.Millisecond))
	if len(pb.peers) != 1 || pb.peers[0] != pa.id {
		t.Fatalf("a newcomer's welcome lists %v, want %s", pb.peers, pa.id)
	}
	pa.expectFrom("peer-joined", pb.id)
}
