package natshub

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyproc"
	"github.com/gorilla/websocket"
)

// hookReceiver records the webhooks it receives: "<type>:<peer>[:<reason>]"
// in arrival order, and how often each event id came.
type hookReceiver struct {
	t   *testing.T
	srv *httptest.Server
	mu  sync.Mutex
	got []string
	ids map[string]int
}

func newHookReceiver(t *testing.T, reasons bool) *hookReceiver {
	r := &hookReceiver{t: t, ids: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev struct {
			ID, Type, Room, Reason string
			Peer                   *struct{ ID string }
		}
		if err := json.Unmarshal(body, &ev); err != nil || req.Header.Get("webhook-signature") == "" {
			t.Errorf("webhook %s: %v", body, err)
		}
		s := ev.Type
		if ev.Peer != nil {
			s += ":" + ev.Peer.ID
		}
		if reasons && ev.Reason != "" {
			s += ":" + ev.Reason
		}
		r.mu.Lock()
		r.got = append(r.got, s)
		r.ids[ev.ID]++
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// await polls until n events arrived, or 30 s passed.
func (r *hookReceiver) await(n int) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		have := len(r.got)
		r.mu.Unlock()
		if have >= n {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling the receiver, not waiting in its stead
	}
}

// check insists that the events are want, in any order across servers,
// each sent once.
func (r *hookReceiver) check(want []string) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	sorted := func(s []string) string {
		s = slices.Clone(s)
		slices.Sort(s)
		return strings.Join(s, " ")
	}
	if sorted(r.got) != sorted(want) {
		r.t.Errorf("events\n%s\nwant, in any order across servers,\n%s", strings.Join(r.got, " "), strings.Join(want, " "))
	}
	for id, n := range r.ids {
		if n != 1 {
			r.t.Errorf("event %s sent %d times", id, n)
		}
	}
}

// A room spanning two Caddy processes on one NATS, both posting to one
// receiver: every event is sent once for the cluster, peer events by the
// server holding the session, room events by the server whose
// compare-and-set started or finished the room.
func TestWebhooksOnceAcrossTwoCaddies(t *testing.T) {
	srv := startNATS(t)
	recv := newHookReceiver(t, false)
	conf := siteConf(srv.URL(), fmt.Sprint("hooks", prefixes.Add(1)), false, recv.srv.URL)
	a, b := caddyproc.Start(t, conf), caddyproc.Start(t, conf)
	var want []string
	// Two rounds: each server's events of the room go out in order, so
	// a duplicate of the first round would arrive before the second's.
	for round := range 2 {
		x := join(t, a, "span") // room_started and peer_joined from A
		y := join(t, b, "span") // peer_joined from B
		x.expect("peer-joined")
		first, last := x, y
		if round == 1 {
			first, last = y, x
		}
		first.send(map[string]string{"type": "leave"}) // peer_left from its server
		last.expectFrom("peer-left", first.id)
		last.send(map[string]string{"type": "leave"}) // peer_left and room_finished from its server
		want = append(want, "room_started", "peer_joined:"+x.id, "peer_joined:"+y.id,
			"peer_left:"+first.id, "peer_left:"+last.id, "room_finished")
		recv.await(len(want))
	}
	recv.check(want)
}

// Every event of a join, resume, kick and close sequence across two Caddy
// processes, exactly once: y's session on B resumes through A (its home,
// B, says peer_resumed), A's rooms API removes z, which B holds, and B's
// closes the room spanning both.
func TestWebhooksOfAResumeAKickAndACloseAcrossTwoCaddies(t *testing.T) {
	srv := startNATS(t)
	recv := newHookReceiver(t, true)
	conf := siteConf(srv.URL(), fmt.Sprint("hooks", prefixes.Add(1)), true, recv.srv.URL)
	a, b := caddyproc.Start(t, conf), caddyproc.Start(t, conf)
	x := join(t, a, "seq")
	yc, err := dialRaw(t, b, "seq")
	if err != nil {
		t.Fatal(err)
	}
	w := readSeq(t, yc)
	x.expectFrom("peer-joined", w.ID)
	yc.UnderlyingConn().Close() // away
	y2, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("%s&resume=%s&last_seq=%d", wsURL(a, "seq"), url.QueryEscape(w.Resume), w.Seq), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { y2.Close() })
	if rw := readSeq(t, y2); rw.Type != "welcome" || !rw.Resumed {
		t.Fatalf("resumed welcome %+v", rw)
	}
	y := &client{t: t, c: y2, id: w.ID}
	z := join(t, b, "seq")
	x.expectFrom("peer-joined", z.id)
	y.expectFrom("peer-joined", z.id)
	if status, got := roomsCall(t, a, "DELETE", "/rooms/seq/peers/"+z.id, ""); status != http.StatusOK {
		t.Fatalf("DELETE peer: %d %v", status, got)
	}
	x.expectFrom("peer-left", z.id)
	y.expectFrom("peer-left", z.id)
	if status, got := roomsCall(t, b, "DELETE", "/rooms/seq", ""); status != http.StatusOK {
		t.Fatalf("DELETE room: %d %v", status, got)
	}
	for _, cl := range []*client{x, y} {
		if f := cl.expect("error"); f.Code != "room_closed" {
			t.Fatalf("%s got error %s, want room_closed", cl.id, f.Code)
		}
	}
	want := []string{"room_started", "peer_joined:" + x.id, "peer_joined:" + y.id, "peer_resumed:" + y.id,
		"peer_joined:" + z.id, "peer_left:" + z.id + ":removed",
		"peer_left:" + x.id + ":room_closed", "peer_left:" + y.id + ":room_closed", "room_finished"}
	recv.await(len(want))
	recv.check(want)
}

// A Caddy process killed: the other removes its members, and its webhooks
// say what the dead one cannot, once: peer_left (reason lost) for each,
// and room_finished for the room the dead one alone held.
func TestWebhooksOfAKilledCaddysPeers(t *testing.T) {
	srv := startNATS(t)
	recv := newHookReceiver(t, true)
	conf := siteConf(srv.URL(), fmt.Sprint("hooks", prefixes.Add(1)), false, recv.srv.URL)
	a, b := caddyproc.Start(t, conf), caddyproc.Start(t, conf)
	x := join(t, a, "both")
	y := join(t, b, "both")
	z := join(t, b, "alone")
	x.expectFrom("peer-joined", y.id)
	want := []string{"room_started", "room_started", "peer_joined:" + x.id, "peer_joined:" + y.id, "peer_joined:" + z.id}
	recv.await(len(want)) // what b sends, before it dies
	b.Kill()
	x.expectFrom("peer-left", y.id)
	x.send(map[string]string{"type": "leave"})
	want = append(want, "peer_left:"+y.id+":lost", "peer_left:"+z.id+":lost", "room_finished",
		"peer_left:"+x.id+":left", "room_finished")
	recv.await(len(want))
	recv.check(want)
}
