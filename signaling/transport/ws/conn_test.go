package ws

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/caddy-webrtc/caddy-webrtc/internal/wstest"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// connPair is a Conn on the server's end of a real WebSocket over
// loopback, upgraded as the handler does, not started, and the client's
// end.
func connPair(t *testing.T) (*Conn, *websocket.Conn) {
	t.Helper()
	server := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := Upgrade(w, r)
		if err != nil {
			t.Error(err)
			return
		}
		server <- ws
	}))
	t.Cleanup(srv.Close)
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := <-server
	c := NewConn(ws, &testMetrics{}, 64<<10)
	t.Cleanup(func() {
		c.disconnect(websocket.CloseAbnormalClosure, "", false) // stops its pings
		client.Close()
		ws.Close()
	})
	return c, client
}

// Frames a connection says before it starts wait for the start, then go
// out in the order said, and those said after follow them.
func TestFramesSaidBeforeTheStartGoOutInOrder(t *testing.T) {
	c, client := connPair(t)
	for i := range 3 {
		c.Say(fmt.Appendf(nil, `{"type":"x","n":%d}`, i))
	}
	c.start(time.Minute)
	for i := range 4 {
		if i == 3 {
			c.Say([]byte(`{"type":"x","n":3}`))
		}
		if got, want := string(wstest.ReadMessage(t, client)), fmt.Sprintf(`{"type":"x","n":%d}`, i); got != want {
			t.Fatalf("frame %d: %s, want %s", i, got, want)
		}
	}
}

// A closed connection sends nothing more: what is said after a close
// without a flush does not go out, the close frame does. A refusal (fail)
// flushes its error frame before its close.
func TestAClosedConnectionRefusesSends(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		c, client := connPair(t)
		c.start(time.Minute)
		c.disconnect(4000, "bye", false)
		c.Say([]byte(`{"type":"late"}`))
		c.Send()
		if code := wstest.CloseCode(t, client); code != 4000 {
			t.Fatalf("closed with %d, want 4000", code)
		}
	})
	t.Run("failed", func(t *testing.T) {
		c, client := connPair(t)
		c.start(time.Minute)
		c.Fail(wire.CodeMissingRoom, "no room", wire.CloseMissingRoom)
		if got, want := string(wstest.ReadMessage(t, client)), string(wire.Error(wire.CodeMissingRoom, "no room")); got != want {
			t.Fatalf("first frame %s, want %s", got, want)
		}
		if code := wstest.CloseCode(t, client); code != wire.CloseMissingRoom {
			t.Fatalf("closed with %d, want %d", code, wire.CloseMissingRoom)
		}
	})
}

// Frames from several senders at once reach a peer each in its sender's
// order and numbered one after the other, whichever goroutine writes them
// (a sender's own, or the writer's in batches).
func TestConcurrentSendersKeepTheirOrder(t *testing.T) {
	const senders, each = 4, 300
	srv, _ := newBenchServer(t)
	base := wsURL(srv)
	a, aw := wstest.Join(t, base, "order")
	var ss []*websocket.Conn
	for range senders {
		s, _ := wstest.Join(t, base, "order")
		ss = append(ss, s)
		wstest.NextFrame(t, a) // its peer-joined
	}
	for i, s := range ss { // the others' peer-joined
		for range senders - 1 - i {
			wstest.NextFrame(t, s)
		}
	}
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; n <= each; n++ {
				msg := fmt.Appendf(nil, `{"type":"signal","to":%q,"data":{"n":%d}}`, aw.ID, n)
				if err := s.WriteMessage(websocket.TextMessage, msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	last := map[string]int{}
	var seq uint64
	for range senders * each {
		f := wstest.NextFrame(t, a)
		n := wstest.SignalN(t, f)
		if n != last[f.From]+1 {
			t.Fatalf("signal %d from %s after %d", n, f.From, last[f.From])
		}
		if seq != 0 && f.Seq != seq+1 {
			t.Fatalf("seq %d after %d", f.Seq, seq)
		}
		last[f.From], seq = n, f.Seq
	}
	wg.Wait()
}

// TestAppendTextFrame checks the three header lengths of RFC 6455 5.2.
func TestAppendTextFrame(t *testing.T) {
	for n, header := range map[int][]byte{
		0:     {0x81, 0},
		125:   {0x81, 125},
		126:   {0x81, 126, 0, 126},
		65535: {0x81, 126, 0xff, 0xff},
		65536: {0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0},
	} {
		payload := bytes.Repeat([]byte("x"), n)
		got := appendTextFrame([]byte("prev"), session.Frame{B: payload})
		if want := append(append([]byte("prev"), header...), payload...); !bytes.Equal(got, want) {
			t.Errorf("%d bytes: header %v, want %v", n, got[4:4+len(header)], header)
		}
	}
}
