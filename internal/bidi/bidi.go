//go:build linux

// Package bidi is a small WebDriver BiDi client (https://w3c.github.io/webdriver-bidi/)
// for the browser tests: enough of the protocol to open tabs, install
// scripts before a page's own, navigate, reload and evaluate JavaScript,
// and to start Firefox with a profile that never reaches the internet.
//
// It speaks the protocol over one WebSocket: commands carry an id and the
// browser answers each with that id; events (messages without an id) are
// not subscribed to, and any that arrive are dropped.
package bidi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/gorilla/websocket"
)

// Conn is a BiDi connection. Its methods may be called from several
// goroutines at once.
type Conn struct {
	ws *websocket.Conn

	mu      sync.Mutex // guards the fields below and writes to ws
	nextID  int64
	pending map[int64]chan message
	err     error // why the connection ended, once it has

	done chan struct{} // closed when the read loop ends
}

// message is a frame from the browser: a command's answer (id set) or an
// event.
type message struct {
	ID      *int64          `json:"id"`
	Type    string          `json:"type"` // "success", "error" or "event"
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

// Error is a command that the browser answered with an error.
type Error struct {
	Method, Code, Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("bidi %s: %s: %s", e.Method, e.Code, e.Message)
}

// Dial connects to a BiDi WebSocket (ws://host:port/session for a new
// session).
func Dial(ctx context.Context, url string) (*Conn, error) {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bidi: dialing %s: %w", url, err)
	}
	c := &Conn{ws: ws, pending: map[int64]chan message{}, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// Close closes the connection; calls waiting for an answer fail.
func (c *Conn) Close() error {
	err := c.ws.Close()
	<-c.done
	return err
}

// readLoop hands each answer to the call waiting for it, until the
// connection ends.
func (c *Conn) readLoop() {
	defer close(c.done)
	for {
		var m message
		if err := c.ws.ReadJSON(&m); err != nil {
			c.fail(fmt.Errorf("bidi: connection lost: %w", err))
			return
		}
		if m.ID == nil {
			continue // an event, or an error about no command in particular
		}
		c.mu.Lock()
		ch := c.pending[*m.ID]
		delete(c.pending, *m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// fail ends every pending call with err.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
}

// Call sends a command and decodes its result into result (unless nil).
// A ctx that ends stops the wait, not the command in the browser.
func (c *Conn) Call(ctx context.Context, method string, params, result any) error {
	ch, id, err := c.send(method, params)
	if err != nil {
		return err
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return c.connErr()
		}
		if m.Type == "error" {
			return &Error{Method: method, Code: m.Error, Message: m.Message}
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(m.Result, result)
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return fmt.Errorf("bidi %s: %w", method, ctx.Err())
	}
}

// send writes a command and registers the channel its answer will come on.
func (c *Conn) send(method string, params any) (chan message, int64, error) {
	if params == nil {
		params = struct{}{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, 0, c.err
	}
	c.nextID++
	id := c.nextID
	ch := make(chan message, 1)
	c.pending[id] = ch
	cmd := struct {
		ID     int64  `json:"id"`
		Method string `json:"method"`
		Params any    `json:"params"`
	}{id, method, params}
	if err := c.ws.WriteJSON(cmd); err != nil {
		delete(c.pending, id)
		return nil, 0, fmt.Errorf("bidi %s: %w", method, err)
	}
	return ch, id, nil
}

func (c *Conn) connErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return errors.New("bidi: connection closed")
	}
	return c.err
}
