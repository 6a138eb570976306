package caddytest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sseFrame is a server frame as the SSE transport delivers it, with its
// event's id.
type sseFrame struct {
	frame
	eventID string // the event's id field, "" when it had none
}

// sseEvent is one event of a stream, or how the stream ended.
type sseEvent struct {
	id, data string
	err      error // io.EOF: the server ended the stream
}

// sseClient is a peer on the SSE fallback transport, the way client.js
// uses it: events from GET <route>/events, frames POSTed to <route>/send
// with the current resume token.
type sseClient struct {
	t      testing.TB
	client *http.Client
	base   string // the WebSocket route as http(s)://host/path
	query  string // room and token
	origin string

	resp   *http.Response
	cancel context.CancelFunc
	events chan sseEvent
	pings  atomic.Int32 // keep-alive comments seen

	id        string
	token     string // the current resume token
	postProto int    // the HTTP major version of the last POST
	lastSeq   uint64 // the last server seq processed
	ended     bool
}

// newSSEClient returns a client of the route at base (such as
// http://localhost:9080/rtc/ws) for the given query (room=...). Its own
// transport is let go at the end of the test.
func newSSEClient(t testing.TB, client *http.Client, base, query string) *sseClient {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{}}
	}
	c := &sseClient{t: t, client: client, base: base, query: query}
	t.Cleanup(func() {
		c.leave()
		c.client.CloseIdleConnections()
	})
	return c
}

// open starts an event stream with extra query parameters appended.
func (c *sseClient) open(extra string) error {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/events?"+c.query+extra, nil)
	if err != nil {
		cancel()
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		cancel()
		return err
	}
	hdr := resp.Header
	if resp.StatusCode != http.StatusOK || hdr.Get("Content-Type") != "text/event-stream" || hdr.Get("Cache-Control") != "no-store" || hdr.Get("X-Accel-Buffering") != "no" {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return fmt.Errorf("GET events: %s %q, headers %v", resp.Status, body, hdr)
	}
	c.resp, c.cancel, c.ended = resp, cancel, false
	c.events = make(chan sseEvent, 64)
	go c.readEvents(resp.Body, c.events, ctx.Done())
	return nil
}

// readEvents parses the stream as EventSource does (the fields the server
// uses) until it ends.
func (c *sseClient) readEvents(body io.ReadCloser, out chan<- sseEvent, quit <-chan struct{}) {
	defer body.Close()
	send := func(ev sseEvent) bool {
		select {
		case out <- ev:
			return true
		case <-quit:
			return false
		}
	}
	r := bufio.NewReader(body)
	var id string
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err == io.EOF && line != "" {
				err = fmt.Errorf("stream ended within a line: %q", line)
			}
			send(sseEvent{err: err})
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data != nil && !send(sseEvent{id: id, data: strings.Join(data, "\n")}) {
				return
			}
			id, data = "", nil
		case strings.HasPrefix(line, ":"):
			c.pings.Add(1)
		case strings.HasPrefix(line, "id: "):
			id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[len("data: "):])
		default:
			send(sseEvent{err: fmt.Errorf("unexpected line %q", line)})
			return
		}
	}
}

// joinSSE opens a stream and reads the welcome.
func joinSSE(t testing.TB, base, query string) (*sseClient, sseFrame) {
	t.Helper()
	c := newSSEClient(t, nil, base, query)
	if err := c.open(""); err != nil {
		t.Fatal(err)
	}
	return c, c.expectWelcome()
}

// expectWelcome reads the welcome, and keeps the id and token it gives.
func (c *sseClient) expectWelcome() sseFrame {
	c.t.Helper()
	w := c.expect("welcome")
	c.id, c.token = w.ID, w.Resume
	return w
}

// read returns the next frame, or why there is none within d.
func (c *sseClient) readFor(d time.Duration) (sseFrame, error) {
	var f sseFrame
	if c.ended {
		return f, io.EOF
	}
	t := time.NewTimer(d)
	defer t.Stop()
	var ev sseEvent
	select {
	case ev = <-c.events:
	case <-t.C:
		return f, fmt.Errorf("no event within %s", d)
	}
	if ev.err != nil {
		c.ended = true
		return f, ev.err
	}
	if err := json.Unmarshal([]byte(ev.data), &f); err != nil {
		return f, fmt.Errorf("event data %q: %v", ev.data, err)
	}
	f.eventID = ev.id
	if f.Seq != 0 {
		if ev.id != strconv.FormatUint(f.Seq, 10) {
			return f, fmt.Errorf("event id %q for seq %d", ev.id, f.Seq)
		}
		if f.Seq != c.lastSeq+1 && !(f.Type == "welcome" && f.Seq == 1) {
			return f, fmt.Errorf("seq %d after %d", f.Seq, c.lastSeq)
		}
		c.lastSeq = f.Seq
	} else if ev.id != "" {
		return f, fmt.Errorf("event id %q for an unsequenced frame", ev.id)
	}
	return f, nil
}

func (c *sseClient) next() sseFrame {
	c.t.Helper()
	f, err := c.readFor(frameWait)
	if err != nil {
		c.t.Fatalf("reading event: %v", err)
	}
	return f
}

// expect reads one frame and checks its type.
func (c *sseClient) expect(typ string) sseFrame {
	c.t.Helper()
	f := c.next()
	checkType(c.t, f.frame, typ)
	return f
}

// expectError reads an error frame with the given code.
func (c *sseClient) expectError(code string) sseFrame {
	c.t.Helper()
	f := c.expect("error")
	checkError(c.t, f.frame, code)
	return f
}

// expectEnd checks that the server ends the stream with no event more.
func (c *sseClient) expectEnd() {
	c.t.Helper()
	f, err := c.readFor(frameWait)
	if err == nil {
		c.t.Fatalf("got %+v, want the stream to end", f)
	}
	if !errors.Is(err, io.EOF) {
		c.t.Fatalf("stream ended with %v, want its end (EOF)", err)
	}
}

// post sends one frame body, returning the status and the error frame of
// the body, if any.
func (c *sseClient) post(body []byte) (int, sseFrame) {
	c.t.Helper()
	return c.postAs(c.token, body)
}

func (c *sseClient) postAs(token string, body []byte) (int, sseFrame) {
	c.t.Helper()
	status, f, err := c.postErr(token, body)
	if err != nil {
		c.t.Fatal(err)
	}
	return status, f
}

func (c *sseClient) postErr(token string, body []byte) (int, sseFrame, error) {
	var f sseFrame
	req, err := http.NewRequest(http.MethodPost, c.base+"/send?session="+url.QueryEscape(token), bytes.NewReader(body))
	if err != nil {
		return 0, f, err
	}
	req.Header.Set("Content-Type", "text/plain")
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, f, err
	}
	defer resp.Body.Close()
	c.postProto = resp.ProtoMajor
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNoContent {
		if len(b) != 0 {
			return 0, f, fmt.Errorf("204 with a body %q", b)
		}
		return resp.StatusCode, f, nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		return 0, f, fmt.Errorf("POST: %s with Content-Type %q: %q", resp.Status, ct, b)
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Type != "error" || f.Code == "" || f.Message == "" {
		return 0, f, fmt.Errorf("POST: %s with body %q, not an error frame (%v)", resp.Status, b, err)
	}
	return resp.StatusCode, f, nil
}

// send POSTs a JSON value as a frame, which the server must take (204).
func (c *sseClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	if status, f := c.post(b); status != http.StatusNoContent {
		c.t.Fatalf("POST %s: %d %+v, want 204", b, status, f)
	}
}

// signal sends data to peer to.
func (c *sseClient) signal(to string, data any) {
	c.t.Helper()
	c.send(map[string]any{"type": "signal", "to": to, "data": data})
}

// roundTrip proves the session is healthy: a ping comes back as pong and
// is the next frame.
func (c *sseClient) roundTrip() {
	c.t.Helper()
	c.send(map[string]string{"type": "ping"})
	c.expect("pong")
}

// drop goes away abruptly, without a goodbye: the session stays, away.
func (c *sseClient) drop() {
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
}

// resume reopens the stream for the session, with what it processed.
func (c *sseClient) resume() error {
	c.drop()
	return c.open("&resume=" + url.QueryEscape(c.token) + "&last_seq=" + strconv.FormatUint(c.lastSeq, 10))
}

// leave says goodbye the way client.js does, then closes the stream.
func (c *sseClient) leave() {
	if c.token != "" && c.cancel != nil {
		_, _, _ = c.postErr(c.token, []byte(`{"type":"leave"}`))
	}
	c.drop()
}
