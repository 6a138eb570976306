package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The Standard Webhooks libraries' own test vector (also what the
// standardwebhooks npm package signs for these inputs).
func TestSignKnownVector(t *testing.T) {
	key, err := DecodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestDecodeSecret(t *testing.T) {
	if k, err := DecodeSecret("plain secret"); err != nil || string(k) != "plain secret" {
		t.Fatalf("raw secret: %q, %v", k, err)
	}
	if k, err := DecodeSecret("whsec_" + base64.StdEncoding.EncodeToString([]byte("key!"))); err != nil || string(k) != "key!" {
		t.Fatalf("whsec_ secret: %q, %v", k, err)
	}
	for _, bad := range []string{"", "whsec_", "whsec_!!notbase64"} {
		if _, err := DecodeSecret(bad); err == nil {
			t.Errorf("DecodeSecret(%q) accepted", bad)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := map[string]time.Duration{
		"":   -1,
		"x":  -1,
		"-3": -1,
		"7":  7 * time.Second,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	}
	for v, want := range cases {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

type fakeMetrics struct {
	mu                    sync.Mutex
	sent, failed, dropped map[string]int
}

func newFakeMetrics() *fakeMetrics {
	return &fakeMetrics{sent: map[string]int{}, failed: map[string]int{}, dropped: map[string]int{}}
}
func (m *fakeMetrics) Sent(typ string, _ time.Duration) { m.mu.Lock(); m.sent[typ]++; m.mu.Unlock() }
func (m *fakeMetrics) Failed(typ string)                { m.mu.Lock(); m.failed[typ]++; m.mu.Unlock() }
func (m *fakeMetrics) Dropped(typ, why string)          { m.mu.Lock(); m.dropped[why]++; m.mu.Unlock() }
func (m *fakeMetrics) Queued(int)                       {}
func (m *fakeMetrics) get(f func(*fakeMetrics) int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return f(m)
}

// verify checks a request's Standard Webhooks headers, computing the
// signature independently of Sign.
func verify(r *http.Request, key, body []byte) error {
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return errors.New("webhook-timestamp " + ts)
	}
	m := hmac.New(sha256.New, key)
	io.WriteString(m, id+"."+ts+"."+string(body))
	if want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)); r.Header.Get("webhook-signature") != want {
		return errors.New("webhook-signature " + r.Header.Get("webhook-signature") + ", want " + want)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return errors.New("content-type " + ct)
	}
	return nil
}

type delivery struct {
	Event
	At string `json:"at"`
}

// A receiver failing each event's first two attempts (503 with a
// Retry-After in seconds, then 429 with one as an HTTP date): every event
// arrives once accepted, with the same id on retries, in order per room;
// the waits are what the endpoint asked.
func TestRetriesAndOrderPerRoom(t *testing.T) {
	key := []byte("k")
	var mu sync.Mutex
	attempts := map[string]int{}
	accepted := map[string][]string{}       // room -> ids in order
	now := time.Now().Truncate(time.Second) // what an HTTP date can say
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verify(r, key, body); err != nil {
			t.Error(err)
		}
		var d delivery
		if err := json.Unmarshal(body, &d); err != nil || d.ID != r.Header.Get("webhook-id") {
			t.Errorf("body %s: %v", body, err)
		}
		mu.Lock()
		defer mu.Unlock()
		attempts[d.ID]++
		switch attempts[d.ID] {
		case 1:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", now.Add(3*time.Second).Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			accepted[d.Room] = append(accepted[d.Room], d.ID)
		}
	}))
	defer srv.Close()
	var waitMu sync.Mutex
	var waits []time.Duration
	m := newFakeMetrics()
	s, err := New(Endpoint{URL: srv.URL + "/hook?x=1", Key: key}, Options{
		Concurrency: 3, Metrics: m,
		Now: func() time.Time { return now },
		Wait: func(ctx context.Context, d time.Duration) error {
			waitMu.Lock()
			waits = append(waits, d)
			waitMu.Unlock()
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for i := range 30 {
		room := "r" + strconv.Itoa(i%3)
		ev := Event{ID: NewID(), Type: PeerJoined, Hub: "h", Room: room, Peer: &Peer{ID: "p" + strconv.Itoa(i)}, At: now}
		want[room] = append(want[room], ev.ID)
		if !s.Enqueue(ev) {
			t.Fatal("Enqueue refused")
		}
	}
	s.Close()
	<-s.Done()
	mu.Lock()
	defer mu.Unlock()
	for room, ids := range want {
		if strings.Join(accepted[room], ",") != strings.Join(ids, ",") {
			t.Errorf("room %s: accepted %v, want %v", room, accepted[room], ids)
		}
	}
	for id, n := range attempts {
		if n != 3 {
			t.Errorf("event %s: %d attempts", id, n)
		}
	}
	if len(waits) != 60 {
		t.Fatalf("%d waits, want 60", len(waits))
	}
	for _, d := range waits {
		if d != 7*time.Second && d != 3*time.Second {
			t.Errorf("waited %s, not what Retry-After said", d)
		}
	}
	if m.get(func(m *fakeMetrics) int { return m.sent[PeerJoined] }) != 30 || m.get(func(m *fakeMetrics) int { return m.failed[PeerJoined] }) != 60 {
		t.Errorf("metrics: sent %v failed %v", m.sent, m.failed)
	}
}

// Without Retry-After, waits grow exponentially with jitter, and the event
// is dropped after MaxAttempts; a 4xx is not retried.
func TestBackoffThenDrop(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "bad") {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	var waits []time.Duration
	m := newFakeMetrics()
	base := 10 * time.Millisecond
	s, _ := New(Endpoint{URL: srv.URL, Key: []byte("k")}, Options{
		MaxAttempts: 5, BackoffBase: base, BackoffMax: 50 * time.Millisecond, Metrics: m,
		Wait: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil },
	})
	s.Enqueue(Event{ID: NewID(), Type: RoomStarted, Room: "r"})
	s.Close()
	<-s.Done()
	if len(waits) != 4 {
		t.Fatalf("waits %v, want 4", waits)
	}
	for i, d := range waits {
		full := min(base<<i, 50*time.Millisecond)
		if d < full/2 || d > full {
			t.Errorf("wait %d = %s, want in [%s, %s]", i, d, full/2, full)
		}
	}
	if got := m.get(func(m *fakeMetrics) int { return m.dropped[DropRetries] }); got != 1 {
		t.Errorf("dropped after retries: %d", got)
	}

	s, _ = New(Endpoint{URL: srv.URL + "/bad", Key: []byte("k")}, Options{Metrics: m,
		Wait: func(context.Context, time.Duration) error { t.Error("retried a 400"); return nil }})
	s.Enqueue(Event{ID: NewID(), Type: RoomStarted, Room: "r"})
	s.Close()
	<-s.Done()
	if got := m.get(func(m *fakeMetrics) int { return m.dropped[DropRejected] }); got != 1 {
		t.Errorf("dropped as rejected: %d", got)
	}
}

// A receiver that hangs: Enqueue never blocks, the queue's bound drops
// and counts what does not fit, and Close ends it all within its drain
// bound.
func TestQueueFullAndCloseWhileHung(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	m := newFakeMetrics()
	core, logs := observer.New(zap.WarnLevel)
	var clockMu sync.Mutex
	clock := time.Unix(1e9, 0)
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	s, _ := New(Endpoint{URL: srv.URL, Key: []byte("k"), Timeout: time.Hour}, Options{
		QueueSize: 3, Concurrency: 1, DrainTimeout: 20 * time.Millisecond, Metrics: m,
		Logger: zap.New(core), Now: now})
	for i := range 10 {
		s.Enqueue(Event{ID: NewID(), Type: PeerLeft, Room: "r" + strconv.Itoa(i)})
	}
	<-arrived
	if got := m.get(func(m *fakeMetrics) int { return m.dropped[DropQueueFull] }); got != 7 {
		t.Errorf("dropped for a full queue: %d, want 7", got)
	}
	// Seven drops within a second: one line. A second later, the next
	// drop's line counts the six not logged.
	if n := logs.FilterMessage("webhook event dropped").Len(); n != 1 {
		t.Errorf("%d drop lines for 7 drops in a second, want 1", n)
	}
	clockMu.Lock()
	clock = clock.Add(dropLogEvery)
	clockMu.Unlock()
	s.Enqueue(Event{ID: NewID(), Type: PeerLeft, Room: "late"})
	lines := logs.FilterMessage("webhook event dropped").All()
	if len(lines) != 2 || lines[1].ContextMap()["unlogged_drops_before"] != int64(6) {
		t.Errorf("drop lines %+v, want a second one counting 6 unlogged", lines)
	}
	s.Close()
	<-s.Done()
	if got := m.get(func(m *fakeMetrics) int { return m.dropped[DropShutdown] }); got != 3 {
		t.Errorf("dropped at shutdown: %d, want 3", got)
	}
	if s.Enqueue(Event{ID: NewID(), Type: PeerLeft, Room: "r"}) {
		t.Error("a closed Sender took an event")
	}
}

func TestEventJSONAndFilter(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
	b, _ := json.Marshal(Event{ID: "evt_1", Type: PeerLeft, Hub: "h", Room: "r", Peer: &Peer{ID: "p", User: "u"}, At: at, Reason: "left"})
	want := `{"id":"evt_1","type":"peer_left","hub":"h","room":"r","peer":{"id":"p","user":"u"},"reason":"left","at":"2026-05-06T06:08:09.123Z"}`
	if string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	s, err := New(Endpoint{URL: "http://127.0.0.1:1/", Key: []byte("k"), Events: []string{RoomStarted}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Enqueue(Event{Type: PeerJoined}) || !s.Wants(RoomStarted) {
		t.Error("events filter")
	}
	for _, bad := range []string{"ftp://x/", "/relative", "http://"} {
		if _, err := New(Endpoint{URL: bad, Key: []byte("k")}, Options{}); err == nil {
			t.Errorf("url %q accepted", bad)
		}
	}
	if _, err := New(Endpoint{URL: "http://x/", Key: []byte("k"), Events: []string{"nope"}}, Options{}); err == nil {
		t.Error("unknown event accepted")
	}
}
