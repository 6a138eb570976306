package caddytest

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	// The receivers: an HTTP server in the test, and README.md's in Node.
	"net/http/httptest"
	"os/exec"
)

// webhookSecret is a Standard Webhooks secret: whsec_ and the base64 key.
var webhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("caddytest webhook key, 32 bytes!"))

// hookEvent is a webhook body as receivers see it.
type hookEvent struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Hub    string `json:"hub"`
	Room   string `json:"room"`
	At     string `json:"at"`
	Reason string `json:"reason"`
	Peer   *struct {
		ID, User, Name string
	} `json:"peer"`
}

func (e hookEvent) String() string {
	s := e.Type
	if e.Peer != nil {
		s += ":" + e.Peer.ID
	}
	if e.Reason != "" {
		s += ":" + e.Reason
	}
	return s
}

// hookReceiver is a real HTTP endpoint on loopback that refuses each
// event's first failFirst attempts (503 asking Retry-After: 0, then 502
// without, which the sender backs off from), checks every signature
// independently, and records what it accepted, in order.
type hookReceiver struct {
	t         *testing.T
	srv       *httptest.Server
	failFirst int
	hold      chan struct{} // when set, every request waits for it

	mu       sync.Mutex
	attempts map[string]int
	accepted []hookEvent
	arrived  chan struct{} // a request came in (hold)
}

func newHookReceiver(t *testing.T, failFirst int, hold chan struct{}) *hookReceiver {
	r := &hookReceiver{t: t, failFirst: failFirst, hold: hold, attempts: map[string]int{}, arrived: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if r.hold != nil {
		select {
		case r.arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.hold:
		case <-req.Context().Done():
			return
		}
	}
	if err := checkSignature(req, body); err != nil {
		r.t.Errorf("webhook request: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev hookEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != req.Header.Get("webhook-id") {
		r.t.Errorf("webhook body %s (%v) for webhook-id %s", body, err, req.Header.Get("webhook-id"))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[ev.ID]++
	switch n := r.attempts[ev.ID]; {
	case n > r.failFirst:
		r.accepted = append(r.accepted, ev)
	case n == 1:
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		w.WriteHeader(http.StatusBadGateway)
	}
}

// checkSignature verifies the Standard Webhooks headers by the spec,
// independently of the server's code.
func checkSignature(req *http.Request, body []byte) error {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(webhookSecret, "whsec_"))
	id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.%s", id, ts, body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	if got := req.Header.Get("webhook-signature"); got != want {
		return fmt.Errorf("webhook-signature %q, want %q", got, want)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		return fmt.Errorf("Content-Type %q", ct)
	}
	return nil
}

func (r *hookReceiver) events() []hookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookEvent(nil), r.accepted...)
}

// webhookSite is the signaling site of these tests, posting to urls.
func webhookSite(hubName string, urls ...string) string {
	var hooks strings.Builder
	for _, u := range urls {
		fmt.Fprintf(&hooks, "\t\t\twebhook %s {\n\t\t\t\tsecret %s\n\t\t\t\ttimeout 5s\n\t\t\t}\n", u, webhookSecret)
	}
	return fmt.Sprintf(`
http://localhost:9080 {
	handle /rtc/* {
		webrtc_signaling {
			hub %s
			resume_window 30s
			limits {
				frames_per_second 1000000
				burst 1000000
			}
%s		}
	}
}
`, hubName, hooks.String())
}

// nodeModules is where the standardwebhooks npm package is installed
// (.ci/run installs it there).
func nodeModules() string {
	if d := os.Getenv("CADDY_WEBRTC_NODE_MODULES"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "caddy-webrtc", "npm", "node_modules")
}

// readmeReceiver runs README.md's Node webhook receiver, verifying with
// the standardwebhooks npm package; it returns its URL and the events it
// printed. It skips the test when node or the package is missing.
func readmeReceiver(t *testing.T) (string, func() []hookEvent) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the README's receiver cannot run (.ci/run installs it)")
	}
	mods := nodeModules()
	if _, err := os.Stat(filepath.Join(mods, "standardwebhooks", "package.json")); err != nil {
		t.Skipf("the standardwebhooks npm package is not in %s: run npm install --no-save --prefix %s standardwebhooks@1.3.0 (as .ci/run does), or set CADDY_WEBRTC_NODE_MODULES", mods, filepath.Dir(mods))
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "### Webhooks\n")
	_, code, ok := strings.Cut(section, "```js\n")
	code, _, ok2 := strings.Cut(code, "```\n")
	if !ok || !ok2 {
		t.Fatal("README.md's Webhooks section has no js example")
	}
	script := filepath.Join(t.TempDir(), "receiver.js")
	if err := os.WriteFile(script, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+webhookSecret, "PORT="+port, "NODE_PATH="+mods)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []hookEvent
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev hookEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Errorf("receiver.js printed %q", sc.Text())
				continue
			}
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
	})
	eventually(t, 10*time.Second, "the README's receiver listening", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return "http://127.0.0.1:" + port + "/hooks/rtc", func() []hookEvent {
		mu.Lock()
		defer mu.Unlock()
		return append([]hookEvent(nil), got...)
	}
}

// A join, resume and leave sequence: every event reaches a receiver that
// fails each event's first two attempts, once accepted each, in order, and
// reaches README.md's Node receiver, which verifies the signatures with
// the standardwebhooks npm package.
func TestWebhooksEveryEventOnceInOrder(t *testing.T) {
	flaky := newHookReceiver(t, 2, nil)
	nodeURL, nodeEvents := readmeReceiver(t)
	before := scrapeMetrics(t)
	loadCaddyfile(t, webhookSite("webhooks", flaky.srv.URL+"/hook?token=not-logged", nodeURL), false)
	base := "ws://localhost:9080/rtc/ws?room=hooked"
	a, _ := join(t, base)
	b := newResumer(t, base)
	a.expect("peer-joined")
	b.cut()
	b.resume()
	b.c.send(map[string]string{"type": "leave"})
	a.expect("peer-left")
	a.leave()

	want := strings.Join([]string{"room_started", "peer_joined:" + a.id, "peer_joined:" + b.id,
		"peer_resumed:" + b.id, "peer_left:" + b.id + ":left", "peer_left:" + a.id + ":left", "room_finished"}, " ")
	for name, got := range map[string]func() []hookEvent{"flaky receiver": flaky.events, "README's receiver": nodeEvents} {
		eventually(t, 60*time.Second, "7 events at the "+name, func() bool { return len(got()) >= 7 })
		evs := got()
		var seq []string
		ids := map[string]bool{}
		for _, e := range evs {
			seq = append(seq, e.String())
			if ids[e.ID] {
				t.Errorf("%s: event %s accepted twice", name, e.ID)
			}
			ids[e.ID] = true
			if e.Hub != "webhooks" || e.Room != "hooked" || !strings.HasSuffix(e.At, "Z") || len(e.At) != len("2006-01-02T15:04:05.000Z") {
				t.Errorf("%s: event %+v", name, e)
			}
		}
		if strings.Join(seq, " ") != want {
			t.Errorf("%s got\n%s\nwant\n%s", name, strings.Join(seq, " "), want)
		}
	}
	flaky.mu.Lock()
	for id, n := range flaky.attempts {
		if n != 3 {
			t.Errorf("event %s: %d attempts, want 3 (two refused, then accepted)", id, n)
		}
	}
	flaky.mu.Unlock()
	// Nothing more comes: a room started again would show here.
	a2, _ := join(t, "ws://localhost:9080/rtc/ws?room=other")
	a2.leave()
	eventually(t, 60*time.Second, "the other room's events", func() bool { return len(flaky.events()) >= 11 })
	if n := len(flaky.events()); n != 11 {
		t.Errorf("%d events, want 11", n)
	}
	// The endpoint is labelled by its host alone: never its path or query.
	ep := `endpoint="` + strings.TrimPrefix(flaky.srv.URL, "http://") + `"`
	const m = "caddy_webrtc_signaling_webhook_"
	expectMetrics(t, before, map[string]float64{
		m + "sent_total{" + ep + `,type="peer_joined"}`:                   3,
		m + "sent_total{" + ep + `,type="room_finished"}`:                 2,
		m + "failed_total{" + ep + `,type="peer_joined"}`:                 6,
		m + "failed_total{" + ep + `,type="peer_resumed"}`:                2,
		m + "delivery_seconds_count{" + ep + "}":                          11,
		m + "dropped_total{" + ep + `,reason="retries",type="peer_left"}`: 0,
	}, map[string]float64{m + "queue_length{" + ep + "}": 0})
}

// A receiver that hangs holds up nothing: two peers keep relaying signals
// while every webhook request waits.
func TestWebhooksHungReceiverDoesNotHoldUpSignaling(t *testing.T) {
	hold := make(chan struct{})
	hung := newHookReceiver(t, 0, hold)
	defer close(hold)
	loadCaddyfile(t, webhookSite("webhooks-hung", hung.srv.URL), false)
	base := "ws://localhost:9080/rtc/ws?room=hung"
	a, _ := join(t, base)
	select {
	case <-hung.arrived: // the first event's request is held
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook request")
	}
	b, _ := join(t, base)
	a.expect("peer-joined")
	const n = 500
	go func() {
		for i := range n {
			_ = a.conn.WriteJSON(map[string]any{"type": "signal", "to": b.id, "data": i})
		}
	}()
	for i := range n {
		f := b.expect("signal")
		if string(f.Data) != fmt.Sprint(i) {
			t.Fatalf("signal %d carries %s", i, f.Data)
		}
	}
	for range 20 { // joins and leaves, each queued behind the held event
		c, _ := join(t, base)
		a.expect("peer-joined")
		b.expect("peer-joined")
		c.leave()
		a.expect("peer-left")
		b.expect("peer-left")
	}
	a.roundTrip()
	b.roundTrip()
	a.leave()
	b.leave()
}

// A reload that keeps a webhook as it was keeps its queue: events queued
// behind a held request before the reload all go out after it.
func TestWebhooksQueueSurvivesAReload(t *testing.T) {
	hold := make(chan struct{})
	recv := newHookReceiver(t, 0, hold)
	released := false
	defer func() {
		if !released {
			close(hold)
		}
	}()
	site := webhookSite("webhooks-reload", recv.srv.URL)
	loadCaddyfile(t, site, false)
	base := "ws://localhost:9080/rtc/ws?room=reloaded"
	a, _ := join(t, base)
	<-recv.arrived // room_started is on its way, held
	b, _ := join(t, base)
	a.expect("peer-joined")
	b.leave()
	a.expect("peer-left")
	loadCaddyfile(t, site, true)
	// A peer of the new config: its event queues behind the old ones, in
	// the same sender, rather than overtaking them in a new one.
	c, _ := join(t, base)
	a.expect("peer-joined")
	close(hold)
	released = true
	want := "room_started peer_joined:" + a.id + " peer_joined:" + b.id + " peer_left:" + b.id + ":left peer_joined:" + c.id
	eventually(t, 6*frameWait, "5 events after the reload", func() bool { return len(recv.events()) >= 5 })
	var seq []string
	for _, e := range recv.events() {
		seq = append(seq, e.String())
	}
	if got := strings.Join(seq, " "); got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	a.leave()
	c.leave()
}

// A reload that changes the webhook (here its URL; a secret's rotation is
// the same): a session that joined before it reports its later events to
// the new config's webhook, rather than to the old one, whose sender only
// drains for a few seconds.
func TestWebhooksOfEarlierSessionsFollowAReload(t *testing.T) {
	before, after := newHookReceiver(t, 0, nil), newHookReceiver(t, 0, nil)
	loadCaddyfile(t, webhookSite("webhooks-changed", before.srv.URL), false)
	base := "ws://localhost:9080/rtc/ws?room=changed"
	a, _ := join(t, base)
	eventually(t, 6*frameWait, "room_started and peer_joined", func() bool { return len(before.events()) >= 2 })
	loadCaddyfile(t, webhookSite("webhooks-changed", after.srv.URL), true)
	a.leave()
	want := "peer_left:" + a.id + ":left room_finished"
	eventually(t, 6*frameWait, "a's leave at the new webhook", func() bool { return len(after.events()) >= 2 })
	var seq []string
	for _, e := range after.events() {
		seq = append(seq, e.String())
	}
	if got := strings.Join(seq, " "); got != want {
		t.Errorf("the new webhook got %s, want %s", got, want)
	}
	if n := len(before.events()); n != 2 {
		t.Errorf("the old webhook got %d events, want the 2 from before the reload", n)
	}
}
