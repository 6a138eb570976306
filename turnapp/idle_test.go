package turnapp

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// testIdleTimeout replaces streamIdleTimeout in these tests.
const testIdleTimeout = 300 * time.Millisecond

// closedByServer reports whether the server closes conn within waitLimit:
// a read ends in EOF or a reset rather than the client's own deadline.
func closedByServer(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(waitLimit))
	buf := make([]byte, 1500)
	for {
		_, err := conn.Read(buf)
		if err == nil {
			continue
		}
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
}

func TestStreamIdleTimeout(t *testing.T) {
	shorten(t, &streamIdleTimeout, testIdleTimeout)
	ts := startServer(t, policy{})
	binding := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	for _, l := range []struct {
		name string
		dial func(*testing.T) net.Conn
	}{
		{"tcp", func(t *testing.T) net.Conn { return dial(t, ts.tcp) }},
		{"tls", func(t *testing.T) net.Conn { return ts.dialTLS(t) }},
	} {
		t.Run(l.name+"/sends nothing", func(t *testing.T) {
			if !closedByServer(l.dial(t)) {
				t.Fatal("a connection that sent nothing is still open")
			}
		})
		t.Run(l.name+"/partial frame", func(t *testing.T) {
			conn := l.dial(t)
			if _, err := conn.Write(binding[:10]); err != nil {
				t.Fatal(err)
			}
			if !closedByServer(conn) {
				t.Fatal("a connection stalled in a frame is still open")
			}
		})
	}
	t.Run("tls/no handshake", func(t *testing.T) {
		if !closedByServer(dial(t, ts.tls)) {
			t.Fatal("a connection that never started TLS is still open")
		}
	})
	// One byte per third of the timeout: every read renews nothing, the
	// frame must be whole within the timeout of its first byte.
	t.Run("tcp/trickled frame", func(t *testing.T) {
		conn := dial(t, ts.tcp)
		closed := make(chan bool, 1)
		go func() { closed <- closedByServer(conn) }()
		tick := time.NewTicker(testIdleTimeout / 3)
		defer tick.Stop()
		for i := range binding {
			select {
			case c := <-closed:
				if !c {
					t.Fatal("client read deadline passed")
				}
				return
			case <-tick.C:
				_, _ = conn.Write(binding[i : i+1])
			}
		}
		t.Fatalf("a %d-byte frame trickled over %s was accepted", len(binding), time.Duration(len(binding))*testIdleTimeout/3)
	})
}

// A client holding an allocation may stay quiet far longer: it refreshes
// every few minutes.
func TestStreamWithAllocationOutlivesIdleTimeout(t *testing.T) {
	shorten(t, &streamIdleTimeout, testIdleTimeout)
	ts := startServer(t, policy{})
	username, password := credential("ivan", 0)
	c := turnClient(t, "tcp", ts.tcp, username, password)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	// A connection opened after the allocation and closed for idling
	// shows the idle timeout has passed for the allocated one too.
	if !closedByServer(dial(t, ts.tcp)) {
		t.Fatal("idle connection still open")
	}
	if _, err := c.SendBindingRequest(); err != nil {
		t.Fatalf("connection with an allocation cut after %s idle: %v", testIdleTimeout, err)
	}
}
