package relay

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// frame is any frame the relay sends.
type frame struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	From  string `json:"from"`
	Code  string `json:"code"`
	Data  any    `json:"data"`
	Peers []struct {
		ID string `json:"id"`
	} `json:"peers"`
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func next(t *testing.T, c *websocket.Conn, typ string) frame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var f frame
	if err := c.ReadJSON(&f); err != nil || f.Type != typ {
		t.Fatalf("got %+v (%v), want a %s frame", f, err, typ)
	}
	return f
}

func TestProtocol(t *testing.T) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/rtc/ws?room=r"
	a := dial(t, url)
	wa := next(t, a, "welcome")
	b := dial(t, url)
	wb := next(t, b, "welcome")
	if len(wa.Peers) != 0 || len(wb.Peers) != 1 || wb.Peers[0].ID != wa.ID || wa.ID == wb.ID {
		t.Fatalf("welcomes %+v %+v", wa, wb)
	}
	if f := next(t, a, "peer-joined"); f.ID != wb.ID {
		t.Fatalf("peer-joined %+v", f)
	}
	_ = a.WriteJSON(map[string]any{"type": "signal", "to": wb.ID, "data": "offer"})
	if f := next(t, b, "signal"); f.From != wa.ID || f.Data != "offer" {
		t.Fatalf("signal %+v", f)
	}
	_ = a.WriteJSON(map[string]any{"type": "signal", "to": "nobody", "data": 1})
	if f := next(t, a, "error"); f.Code != "unknown_peer" {
		t.Fatalf("error %+v", f)
	}
	_ = b.WriteJSON(map[string]any{"type": "broadcast", "data": "hi"})
	if f := next(t, a, "broadcast"); f.From != wb.ID {
		t.Fatalf("broadcast %+v", f)
	}
	_ = a.WriteJSON(map[string]any{"type": "ping"})
	next(t, a, "pong")
	b.Close()
	if f := next(t, a, "peer-left"); f.ID != wb.ID {
		t.Fatalf("peer-left %+v", f)
	}
}
