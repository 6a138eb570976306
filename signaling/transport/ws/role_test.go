package ws

import (
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// A connection starts with no session, attach gives it one, and a failed
// resume's detach takes it back: its role follows, and with no session it
// acknowledges nothing and its pings carry 0.
func TestAttachSetsTheConnectionsRole(t *testing.T) {
	c, _ := connPair(t)
	if _, ok := c.role.(refusedRole); !ok {
		t.Fatalf("new connection's role = %T, want refusedRole", c.role)
	}
	h := newServer()
	s := joined(t, h, "room", "192.0.2.1", &heldTransport{})
	c.Attach(s)
	if r, ok := c.role.(sessionRole); !ok || r.sess() != s {
		t.Fatalf("attached connection's role = %#v, want the session's", c.role)
	}
	c.Attach(nil)
	if c.role.sess() != nil || c.role.pingSeq(c) != "0" || c.role.ackWait(c) != 0 {
		t.Fatalf("detached connection's role = %#v, want no session", c.role)
	}
}

// A connection whose session a resume moved to another transport does
// not ask for, nor take, the acknowledgement of that transport's frames.
func TestADisplacedConnectionsPingsCarryZero(t *testing.T) {
	h := newServer()
	s := joined(t, h, "room", "192.0.2.1", &heldTransport{})
	c, _ := connPair(t)
	c.Attach(s)
	c.LockWith(s)
	defer c.UnlockWith(s)
	if got := c.role.pingSeq(c); got != "0" {
		t.Errorf("pingSeq = %q, want 0", got)
	}
	if got := c.role.ackWait(c); got != 0 {
		t.Errorf("ackWait = %d, want 0", got)
	}
}

// A connection without a session whose reading ends (none does in the
// handler: a refused peer is drained by gorilla) is closed with the
// code, and readEnded returns once the close frame is out.
func TestARefusedConnectionsReadEndClosesIt(t *testing.T) {
	c, client := connPair(t)
	done := c.start(time.Minute)
	c.role.readEnded(c, readEnd{code: websocket.CloseGoingAway, reason: "bye"}, done)
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := client.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway || ce.Text != "bye" {
		t.Fatalf("client read %v, want close %d bye", err, websocket.CloseGoingAway)
	}
}
