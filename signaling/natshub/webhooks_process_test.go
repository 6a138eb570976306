package natshub

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyproc"
)

// A room spanning two Caddy processes on one NATS, both posting to one
// receiver: every event is sent once for the cluster, peer events by the
// server holding the session, room events by the server whose
// compare-and-set started or finished the room.
func TestWebhooksOnceAcrossTwoCaddies(t *testing.T) {
	srv := startNATS(t)
	var mu sync.Mutex
	var got []string // "<type>:<peer>", in arrival order
	ids := map[string]int{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			ID, Type, Room string
			Peer           *struct{ ID string }
		}
		if err := json.Unmarshal(body, &ev); err != nil || r.Header.Get("webhook-signature") == "" {
			t.Errorf("webhook %s: %v", body, err)
		}
		s := ev.Type
		if ev.Peer != nil {
			s += ":" + ev.Peer.ID
		}
		mu.Lock()
		got = append(got, s)
		ids[ev.ID]++
		mu.Unlock()
	}))
	defer recv.Close()
	prefix := fmt.Sprint("hooks", prefixes.Add(1))
	conf := func(port int) string {
		return fmt.Sprintf(`http://127.0.0.1:%d {
	bind 127.0.0.1
	webrtc_signaling /ws* {
		backend nats {
			url %s
			prefix %s
			node_timeout %s
		}
		webhook %s {
			secret whsec_c2VjcmV0
		}
	}
}
`, port, srv.URL(), prefix, testNodeTimeout, recv.URL)
	}
	a, b := caddyproc.Start(t, conf), caddyproc.Start(t, conf)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
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
		deadline := time.Now().Add(30 * time.Second)
		for count() < len(want) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // polling the receiver, not waiting in its stead
		}
	}
	mu.Lock()
	defer mu.Unlock()
	sorted := func(s []string) string {
		s = slices.Clone(s)
		slices.Sort(s)
		return strings.Join(s, " ")
	}
	if sorted(got) != sorted(want) {
		t.Errorf("events\n%s\nwant, in any order across servers,\n%s", strings.Join(got, " "), strings.Join(want, " "))
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s sent %d times", id, n)
		}
	}
}
