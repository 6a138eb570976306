package caddytest

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// frame is any server frame, decoded loosely.
type frame struct {
	Seq          uint64                            `json:"seq"`
	Resumed      bool                              `json:"resumed"`
	Ack          *uint64                           `json:"ack"`
	ResumeWindow int                               `json:"resume_window"`
	Type         string                            `json:"type"`
	ID           string                            `json:"id"`
	User         string                            `json:"user"`
	Name         string                            `json:"name"`
	Room         string                            `json:"room"`
	From         string                            `json:"from"`
	Code         string                            `json:"code"`
	Message      string                            `json:"message"`
	Data         json.RawMessage                   `json:"data"`
	Peers        []struct{ ID, User, Name string } `json:"peers"`
	Resume       string                            `json:"resume"`
	ICEServers   []struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
	} `json:"iceServers"`
}

// wsClient is a signaling client speaking protocol v1 the way a page would.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
	id   string
}

const frameWait = 10 * time.Second

// dial opens a WebSocket to url; origin is sent as the Origin header when set.
func dial(t testing.TB, url, origin string) *wsClient {
	t.Helper()
	c, err := dialErr(url, origin)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(c.leave)
	c.t = t
	return c
}

// leave closes the connection the way a page that leaves does: a close
// frame with 1000, so that the server lets the seat go at once instead of
// keeping it for a resume.
func (c *wsClient) leave() {
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	c.conn.Close()
}

func dialErr(url, origin string) (*wsClient, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	d := websocket.Dialer{HandshakeTimeout: frameWait}
	conn, resp, err := d.Dial(url, h)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return &wsClient{conn: conn}, nil
}

// join dials and reads the welcome frame.
func join(t testing.TB, url string) (*wsClient, frame) {
	t.Helper()
	c := dial(t, url, "")
	w := c.expect("welcome")
	c.id = w.ID
	return c, w
}

// next reads one frame.
func (c *wsClient) next() frame {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("reading frame: %v", err)
	}
	return f
}

func (c *wsClient) read() (frame, error) { return c.readFor(frameWait) }

// readFor reads one frame, waiting at most d.
func (c *wsClient) readFor(d time.Duration) (frame, error) {
	var f frame
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	typ, b, err := c.conn.ReadMessage()
	if err != nil {
		return f, err
	}
	if typ != websocket.TextMessage {
		return f, errors.New("server sent a non-text frame")
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, err
	}
	return f, nil
}

// expect reads one frame and checks its type.
func (c *wsClient) expect(typ string) frame {
	c.t.Helper()
	f := c.next()
	checkType(c.t, f, typ)
	return f
}

// expectError reads an error frame with the given code.
func (c *wsClient) expectError(code string) frame {
	c.t.Helper()
	f := c.expect("error")
	checkError(c.t, f, code)
	return f
}

// checkType fails the test unless f is of type typ.
func checkType(t testing.TB, f frame, typ string) {
	t.Helper()
	if f.Type != typ {
		t.Fatalf("got frame %+v, want type %q", f, typ)
	}
}

// checkError fails the test unless f has the error code, and a message.
func checkError(t testing.TB, f frame, code string) {
	t.Helper()
	if f.Code != code || f.Message == "" {
		t.Fatalf("got error %q (%q), want code %q with a message", f.Code, f.Message, code)
	}
}

// expectClose reads until the connection closes and checks the close code.
func (c *wsClient) expectClose(code int) {
	c.t.Helper()
	for {
		_, err := c.read()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended with %v, want close code %d", err, code)
		}
		if ce.Code != code {
			c.t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, code)
		}
		return
	}
}

// send writes a JSON value as a text frame.
func (c *wsClient) send(v any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		c.t.Fatalf("sending: %v", err)
	}
}

// sendRaw writes one frame of the given WebSocket type.
func (c *wsClient) sendRaw(typ int, b []byte) {
	c.t.Helper()
	if err := c.conn.WriteMessage(typ, b); err != nil {
		c.t.Fatalf("sending: %v", err)
	}
}

// roundTrip proves the connection is healthy: a ping comes back as pong
// and is the next frame, so nothing unexpected was queued before it.
func (c *wsClient) roundTrip() {
	c.t.Helper()
	c.send(map[string]string{"type": "ping"})
	c.expect("pong")
}

// signal sends data to peer to.
func (c *wsClient) signal(to string, data any) {
	c.t.Helper()
	c.send(map[string]any{"type": "signal", "to": to, "data": data})
}
