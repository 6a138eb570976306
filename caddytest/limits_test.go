package caddytest

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const limitsSite = `
http://localhost:9080 {
	handle /rtc/* {
		webrtc_signaling {
			hub limits
			limits {
				frames_per_second  5
				burst              10
				max_rooms          2
				max_peers_total    3
			}
		}
	}
	handle /conn/* {
		webrtc_signaling {
			hub conns
			limits {
				connections_per_ip 2
			}
		}
	}
}
`

// emptyHub waits until the named hub holds no peer and no room. The limits
// of limitsSite count every peer of the hub, and the hub outlives a config
// load: a test starts only once the leaves of the one before it (sent as
// its clients closed, handled by the server a moment later) have freed
// their seats, else its joins may find max_peers_total reached.
func emptyHub(t *testing.T, hub string) {
	t.Helper()
	eventually(t, 10*time.Second, "hub "+hub+" to be empty", func() bool {
		var stats struct {
			Hubs map[string]struct{ Rooms, Peers int } `json:"hubs"`
		}
		adminJSON(t, "/webrtc/signaling", &stats)
		h := stats.Hubs[hub]
		return h.Rooms == 0 && h.Peers == 0
	})
}

// Each limit is reached while a bystander in the same hub keeps working,
// and shows up in the metrics.
func TestLimits(t *testing.T) {
	loadCaddyfile(t, limitsSite, false)
	emptyHub(t, "limits")
	emptyHub(t, "conns")
	before := scrapeMetrics(t)
	a1, _ := join(t, roomURL+"a")
	bystander, _ := join(t, roomURL+"a")
	a1.expect("peer-joined")
	b1, _ := join(t, roomURL+"b")

	// max_rooms: a third room is refused; max_peers_total: so is a fourth
	// peer in an existing room.
	for _, room := range []string{"c", "b"} {
		c := dial(t, roomURL+room, "")
		c.expectError("unavailable")
		c.expectClose(websocket.CloseGoingAway)
	}
	// connections_per_ip (another hub): the third upgrade from this
	// address is answered 429 with a reason.
	const connURL = "ws://localhost:9080/conn/ws?room=c"
	c1, _ := join(t, connURL)
	join(t, connURL)
	c1.expect("peer-joined")
	_, resp, err := websocket.DefaultDialer.Dial(connURL, nil)
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("third connection: %v, %v; want HTTP 429", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "too many signaling connections") {
		t.Fatalf("429 body %q", body)
	}
	c1.roundTrip()
	bystander.roundTrip()
	b1.roundTrip()

	// frames_per_second: a burst past the bucket is dropped frame by frame
	// with rate_limited, and the bystander is not disturbed.
	for range 12 {
		a1.send(map[string]string{"type": "ping"})
	}
	pongs, limited := 0, 0
	for range 12 {
		switch f := a1.next(); {
		case f.Type == "pong":
			pongs++
		case f.Type == "error" && f.Code == "rate_limited":
			limited++
		default:
			t.Fatalf("unexpected %+v", f)
		}
	}
	if pongs < 10 || limited == 0 {
		t.Fatalf("%d pongs, %d rate_limited; want the burst of 10 served and the rest limited", pongs, limited)
	}
	bystander.roundTrip()

	expectMetrics(t, before, map[string]float64{
		`caddy_webrtc_signaling_joins_total{hub="limits"}`:                               3,
		`caddy_webrtc_signaling_refusals_total{code="unavailable",hub="limits"}`:         2,
		`caddy_webrtc_signaling_refusals_total{code="too_many_connections",hub="conns"}`: 1,
		`caddy_webrtc_signaling_rate_limited_frames_total{hub="limits"}`:                 float64(limited),
		`caddy_webrtc_signaling_frames_in_total{hub="limits",type="ping"}`:               float64(pongs + 3), // and three round trips
		`caddy_webrtc_signaling_frames_out_total{hub="limits",type="pong"}`:              float64(pongs + 3), // and three round trips
	}, map[string]float64{
		`caddy_webrtc_signaling_peers{hub="limits"}`: 3,
		`caddy_webrtc_signaling_rooms{hub="limits"}`: 2,
	})
}

// A peer that goes on exceeding its frame rate is disconnected with 4429.
func TestSustainedFloodIsDisconnected(t *testing.T) {
	loadCaddyfile(t, limitsSite, false)
	emptyHub(t, "limits")
	bystander, _ := join(t, roomURL+"flood")
	flooder, _ := join(t, roomURL+"flood")
	bystander.expect("peer-joined")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if flooder.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)) != nil {
					return
				}
			}
		}
	}()
	start := time.Now()
	for {
		_, err := flooder.readFor(30 * time.Second)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4429 {
			t.Fatalf("flooder's connection ended with %v, want close code 4429", err)
		}
		break
	}
	if d := time.Since(start); d < 10*time.Second {
		t.Fatalf("disconnected after %s, before 10 s of abuse", d)
	}
	if f := bystander.expect("peer-left"); f.ID != flooder.id {
		t.Fatalf("peer-left %q", f.ID)
	}
	bystander.roundTrip()
}
