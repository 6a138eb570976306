package natshub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyproc"
	"github.com/caddy-webrtc/caddy-webrtc/internal/natstest"
)

// Figures of issue 10 (BENCHMARKS.md): the same measurement through one
// Caddy with the memory hub and through two Caddy processes on NATS, the
// sender on one and the receiver on the other.

// benchServers are the Caddy processes a backend's peers connect to: one
// process for memory, two on one embedded NATS for nats.
func benchServers(b *testing.B, backend string) (*caddyproc.Proc, *caddyproc.Proc, *natstest.Server) {
	b.Helper()
	if backend == "memory" {
		p := startCaddy(b, caddyConf{})
		return p, p, nil
	}
	srv := natstest.Run(b)
	c := natsConf(fmt.Sprint("bench", prefixes.Add(1)), 0, srv.URL())
	return startCaddy(b, c), startCaddy(b, c), srv
}

// percentiles reports the p50 and p99 of ds, in microseconds.
func percentiles(b *testing.B, ds []time.Duration, name string) {
	slices.Sort(ds)
	at := func(q float64) float64 {
		return float64(ds[int(q*float64(len(ds)-1))].Microseconds())
	}
	b.ReportMetric(at(0.50), name+"-p50-µs")
	b.ReportMetric(at(0.99), name+"-p99-µs")
}

// BenchmarkSignalRelay relays signals from a peer to a room-mate:
// "one-at-a-time" waits for each before sending the next (latency without
// queueing), "window-16" keeps 16 in flight (throughput).
func BenchmarkSignalRelay(b *testing.B) {
	for _, backend := range []string{"memory", "nats"} {
		sendTo, recvOn, _ := benchServers(b, backend)
		from := join(b, sendTo, "relay")
		to := join(b, recvOn, "relay")
		from.expectFrom("peer-joined", to.id)
		for _, window := range []int{1, 16} {
			name := "window-16"
			if window == 1 {
				name = "one-at-a-time"
			}
			b.Run(backend+"/"+name, func(b *testing.B) { relayFrames(b, from, to, window) })
		}
	}
}

// relayFrames sends b.N timestamped signals with at most window in flight
// and reports frames/s and latency percentiles.
func relayFrames(b *testing.B, from, to *client, window int) {
	inFlight := make(chan struct{}, window)
	lat := make([]time.Duration, 0, b.N)
	errs := make(chan error, 1)
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range b.N {
			inFlight <- struct{}{}
			if err := from.c.WriteJSON(map[string]any{"type": "signal", "to": to.id, "data": time.Now().UnixNano()}); err != nil {
				errs <- err
				return
			}
			_ = i
		}
	})
	for range b.N {
		_ = to.c.SetReadDeadline(time.Now().Add(30 * time.Second))
		var f wireFrame
		if err := to.c.ReadJSON(&f); err != nil || f.Type != "signal" {
			b.Fatalf("receiving: %v %+v", err, f)
		}
		var sent int64
		_ = json.Unmarshal(f.Data, &sent)
		lat = append(lat, time.Since(time.Unix(0, sent)))
		<-inFlight
	}
	elapsed := time.Since(start)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "frames/s")
	percentiles(b, lat, "latency")
}

// BenchmarkJoin joins a room that holds one peer (for nats, on the other
// server) and measures until the welcome: from the dial (TCP, upgrade,
// join) and from the upgrade's answer.
func BenchmarkJoin(b *testing.B) {
	for _, backend := range []string{"memory", "nats"} {
		joinTo, residentOn, _ := benchServers(b, backend)
		resident := join(b, residentOn, "join")
		b.Run(backend, func(b *testing.B) {
			total := make([]time.Duration, 0, b.N)
			afterUpgrade := make([]time.Duration, 0, b.N)
			for range b.N {
				start := time.Now()
				c, err := dialRaw(b, joinTo, "join")
				if err != nil {
					b.Fatal(err)
				}
				upgraded := time.Now()
				if f, err := first(c); err != nil || f.Type != "welcome" {
					b.Fatalf("joining: %+v %v", f, err)
				}
				total = append(total, time.Since(start))
				afterUpgrade = append(afterUpgrade, time.Since(upgraded))
				leaveNow(c)
				// The room is back to one peer before the next join.
				resident.expect("peer-joined")
				resident.expect("peer-left")
			}
			b.StopTimer()
			percentiles(b, total, "dial-to-welcome")
			percentiles(b, afterUpgrade, "upgrade-to-welcome")
		})
	}
}

// natsTraffic counts the messages published on the NATS (every subject,
// JetStream API and key-value subjects included) by kind.
type natsTraffic struct {
	mu     sync.Mutex
	msgs   map[string]int
	bytes  map[string]int
	prefix string
	nc     *nats.Conn
	marker chan struct{}
}

// markerSubject is the counter's own: it is not counted.
const markerSubject = "_bench.marker"

func watchTraffic(b *testing.B, url, prefix string) *natsTraffic {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	tr := &natsTraffic{prefix: prefix, marker: make(chan struct{}, 1), msgs: map[string]int{}, bytes: map[string]int{}}
	if _, err := nc.Subscribe(">", tr.count); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	tr.nc = nc
	return tr
}

func (tr *natsTraffic) count(m *nats.Msg) {
	if m.Subject == markerSubject {
		tr.marker <- struct{}{}
		return
	}
	kind := "other"
	for _, k := range []string{tr.prefix + ".hb.", tr.prefix + ".", "$JS.API.", "$KV.", "_INBOX.", "$JS.ACK."} {
		if strings.HasPrefix(m.Subject, k) {
			kind = strings.TrimSuffix(strings.TrimPrefix(k, tr.prefix), ".")
			if kind == "" {
				kind = "frames"
				if m.Header.Get(hdrKind) == kindAck {
					kind = "acks"
				}
			}
			break
		}
	}
	size := len(m.Subject) + len(m.Reply) + len(m.Data)
	for k, vs := range m.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	tr.mu.Lock()
	tr.msgs[kind]++
	tr.bytes[kind] += size
	tr.mu.Unlock()
}

func (tr *natsTraffic) reset(b *testing.B) {
	tr.settle(b)
	tr.mu.Lock()
	tr.msgs, tr.bytes = map[string]int{}, map[string]int{}
	tr.mu.Unlock()
}

// settle waits until the counter has seen every message published before
// the call: the server delivers to it in the order it took them, and the
// marker comes last.
func (tr *natsTraffic) settle(b *testing.B) {
	if err := tr.nc.Publish(markerSubject, nil); err != nil {
		b.Fatal(err)
	}
	select {
	case <-tr.marker:
	case <-time.After(10 * time.Second):
		b.Fatal("the traffic counter did not see its marker")
	}
}

// report reports the traffic since the last reset per op, heartbeats
// apart, and resets.
func (tr *natsTraffic) report(b *testing.B, op string, n int) {
	tr.settle(b)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var msgs, bytes int
	var kinds []string
	for k, v := range tr.msgs {
		if k == ".hb" {
			continue
		}
		msgs += v
		bytes += tr.bytes[k]
		kinds = append(kinds, fmt.Sprintf("%s %.1f msgs %.0f B", k, float64(v)/float64(n), float64(tr.bytes[k])/float64(n)))
	}
	slices.Sort(kinds)
	b.ReportMetric(float64(msgs)/float64(n), "msgs/"+op)
	b.ReportMetric(float64(bytes)/float64(n), "B/"+op)
	b.Logf("per %s: %s (heartbeats meanwhile, not counted: %d msgs %d B)", op, strings.Join(kinds, "; "), tr.msgs[".hb"], tr.bytes[".hb"])
	tr.msgs, tr.bytes = map[string]int{}, map[string]int{}
}

// BenchmarkNATSTrafficRoomOf6 counts what one room of six peers, three on
// each of two servers, publishes on NATS per join, per signal to a peer on
// the other server, per signal to a peer on the same server, per broadcast
// and per leave. Heartbeats (one per server every node_timeout/3, whatever
// the rooms) are left out.
func BenchmarkNATSTrafficRoomOf6(b *testing.B) {
	srv := natstest.Run(b)
	prefix := fmt.Sprint("traffic", prefixes.Add(1))
	c := natsConf(prefix, 0, srv.URL())
	servers := []*caddyproc.Proc{startCaddy(b, c), startCaddy(b, c)}
	for _, p := range servers { // connect and create the bucket first
		cl, _ := joinEventually(b, p, "warmup", 15*time.Second)
		leaveNow(cl.c)
	}
	tr := watchTraffic(b, srv.URL(), prefix)
	js, err := jetstream.New(tr.nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kv, err := js.KeyValue(ctx, prefix+"_rooms")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for iter := range b.N {
		room := fmt.Sprint("six", iter)
		var cls []*client
		// Join one by one, each announced to everyone, so that the traffic
		// counted is the joins' alone.
		settle := func() {
			for _, cl := range cls[:len(cls)-1] {
				cl.expect("peer-joined")
			}
		}
		tr.reset(b)
		for i := range 6 {
			cls = append(cls, join(b, servers[i%2], room))
			settle()
		}
		tr.report(b, "join", 6)
		const signals = 200
		for _, pair := range []struct {
			name     string
			from, to *client
		}{{"signal-across", cls[0], cls[1]}, {"signal-same-server", cls[0], cls[2]}} {
			for i := range signals {
				pair.from.signal(pair.to.id, i)
				pair.to.expect("signal")
			}
			tr.report(b, pair.name, signals)
		}
		for range signals {
			cls[0].send(map[string]any{"type": "broadcast", "data": 1})
			for _, cl := range cls[1:] {
				cl.expect("broadcast")
			}
		}
		tr.report(b, "broadcast", signals)
		// Five leave, each seen by the last; the last one's leave is not
		// counted, but waited for (its key gone) before the next round.
		last := cls[len(cls)-1]
		for _, cl := range cls[:len(cls)-1] {
			leaveNow(cl.c)
			last.expectFrom("peer-left", cl.id)
		}
		tr.report(b, "leave", 5)
		leaveNow(last.c)
		key := newHub("default", config{}, zap.NewNop()).roomKey(room)
		eventually(b, 10*time.Second, "the room's key gone", func() bool {
			_, err := kv.Get(ctx, key)
			return errors.Is(err, jetstream.ErrKeyNotFound)
		})
	}
}

// leaveNow leaves the room and closes: a connection closed without a leave
// is a lost one, which stays in its room for resume_window.
func leaveNow(c *websocket.Conn) {
	_ = c.WriteJSON(map[string]string{"type": "leave"})
	// Read until the server closes: a socket closed with frames unread
	// is reset, and a reset can drop the leave before the server reads it.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.NextReader(); err != nil {
			break
		}
	}
	c.Close()
}
