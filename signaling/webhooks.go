package signaling

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyfileopt"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/webhook"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// Webhook is an endpoint the hub's room and peer events are POSTed to,
// signed as Standard Webhooks says (README.md, Webhooks).
type Webhook struct {
	// URL is the endpoint, an absolute http or https URL.
	URL string `json:"url"`
	// Secret signs the events. Placeholders such as {env.WEBHOOK_SECRET}
	// are resolved at load. A secret of the form whsec_<base64> (what
	// Standard Webhooks libraries generate) is the base64 of the key;
	// any other secret is the key itself, its bytes as written.
	Secret string `json:"secret"`
	// Events lists the event types sent (room_started, room_finished,
	// peer_joined, peer_left, peer_resumed). Default: all of them.
	Events []string `json:"events,omitempty"`
	// Timeout bounds each attempt. Default 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
}

// senders keeps webhook senders across config reloads, by everything that
// defines one (URL, key, events, timeout): a reload keeping a webhook as
// it was keeps its sender and what waits in its queue. A webhook no loaded
// config has any more drains its queue for up to
// webhook.DefaultDrainTimeout in the background; what is left then is
// dropped and counted.
var senders = caddy.NewUsagePool()

type pooledSender struct{ *webhook.Sender }

// Destruct implements caddy.Destructor.
func (p pooledSender) Destruct() error {
	p.Close()
	return nil
}

// provisionWebhooks opens (or takes from the pool) a sender per webhook.
// Every key it adds to h.webhookKeys must be released (releaseWebhooks).
func (h *Handler) provisionWebhooks(ctx caddy.Context) error {
	if len(h.Webhooks) == 0 {
		return nil
	}
	if err := registerWebhookMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering webhook metrics: %w", err)
	}
	repl := caddy.NewReplacer()
	for i, wh := range h.Webhooks {
		ep, err := wh.endpoint(repl)
		if err != nil {
			return fmt.Errorf("webhook %d: %w", i+1, err)
		}
		key := senderKey(ep)
		v, _, err := senders.LoadOrNew(key, func() (caddy.Destructor, error) {
			s, err := webhook.New(ep, webhook.Options{
				Metrics: newWebhookMetrics(ep.URL),
				// The sender outlives this config: not its logger.
				Logger: caddy.Log().Named("http.handlers.webrtc_signaling.webhook"),
			})
			return pooledSender{s}, err
		})
		if err != nil {
			return fmt.Errorf("webhook %d: %w", i+1, err)
		}
		h.webhookKeys = append(h.webhookKeys, key)
		h.webhooks = append(h.webhooks, v.(pooledSender).Sender)
	}
	return nil
}

// endpoint checks a webhook's options and resolves its secret.
func (wh Webhook) endpoint(repl *caddy.Replacer) (webhook.Endpoint, error) {
	if _, err := webhook.ParseURL(wh.URL); err != nil {
		return webhook.Endpoint{}, err
	}
	if wh.Secret == "" {
		return webhook.Endpoint{}, errors.New("secret is required")
	}
	secret := repl.ReplaceKnown(wh.Secret, "")
	if secret == "" {
		return webhook.Endpoint{}, errors.New("secret is empty after placeholder replacement")
	}
	key, err := webhook.DecodeSecret(secret)
	if err != nil {
		return webhook.Endpoint{}, err
	}
	for _, e := range wh.Events {
		if !webhook.KnownType(e) {
			return webhook.Endpoint{}, fmt.Errorf("unknown event %q (known: %s)", e, strings.Join(webhook.Types, ", "))
		}
	}
	if wh.Timeout < 0 {
		return webhook.Endpoint{}, fmt.Errorf("timeout must not be negative")
	}
	return webhook.Endpoint{URL: wh.URL, Key: key, Events: wh.Events, Timeout: time.Duration(wh.Timeout)}, nil
}

// senderKey names a sender in the pool; the key enters only hashed.
func senderKey(ep webhook.Endpoint) string {
	h := sha256.New()
	for _, part := range append([]string{ep.URL, string(ep.Key), ep.Timeout.String()}, ep.Events...) {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return "webrtc_signaling.webhook." + hex.EncodeToString(h.Sum(nil))
}

// releaseWebhooks gives the handler's senders back to the pool, once.
func (h *Handler) releaseWebhooks() {
	for _, k := range h.webhookKeys {
		_, _ = senders.Delete(k)
	}
	h.webhookKeys = nil
}

// hookSet is the webhook senders of every webrtc_signaling handler that
// uses a hub in the loaded configs: what its sessions report to, whenever
// they joined, and its sweeps. A reload's handlers add theirs before the
// old ones' Cleanup takes those away, so a session that joined before a
// reload reports to the new config's webhooks, and an event of the moment
// between may go to the old and the new sender of a changed webhook both,
// with one id, which receivers dedupe by. Handlers sharing a hub share its
// events: each goes once to every distinct sender.
type hookSet struct {
	hub string

	mu  sync.Mutex
	by  map[*Handler][]*webhook.Sender
	all atomic.Pointer[[]*webhook.Sender] // distinct senders of by, read by emit without the lock
}

// set makes senders h's webhooks.
func (s *hookSet) set(h *Handler, senders []*webhook.Sender) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = make(map[*Handler][]*webhook.Sender)
	}
	if len(senders) == 0 {
		delete(s.by, h)
	} else {
		s.by[h] = senders
	}
	s.publish()
}

// drop forgets h's webhooks (its Cleanup).
func (s *hookSet) drop(h *Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.by, h)
	s.publish()
}

// publish recomputes all; the caller holds s.mu.
func (s *hookSet) publish() {
	var all []*webhook.Sender
	for _, senders := range s.by {
		for _, snd := range senders {
			if !slices.Contains(all, snd) {
				all = append(all, snd)
			}
		}
	}
	s.all.Store(&all)
}

// emit sends a session's event, or a sweep's, to every webhook of the hub.
func (s *hookSet) emit(ev session.Event) {
	all := s.all.Load()
	if all == nil || len(*all) == 0 {
		return
	}
	we := webhook.Event{ID: webhook.NewID(), Type: ev.Type, Hub: s.hub, Room: ev.Room, At: ev.At, Reason: ev.Reason}
	if ev.Type != session.EventRoomStarted && ev.Type != session.EventRoomFinished {
		we.Peer = &webhook.Peer{ID: ev.Peer.ID, User: ev.Peer.User, Name: ev.Peer.Name}
	}
	for _, snd := range *all {
		snd.Enqueue(we)
	}
}

// sweepEvents turns what a clustered hub reports of a stopped server's
// members, removed by this server (hub.Sweeps), into the events their own
// server cannot send: peer_left with reason lost, and room_finished when
// the room is now empty.
func sweepEvents(events func(session.Event)) func(string, []wire.PeerInfo, bool) {
	return func(room string, gone []wire.PeerInfo, finished bool) {
		now := time.Now()
		for _, p := range gone {
			events(session.Event{Type: session.EventPeerLeft, Room: room, Peer: p, Reason: session.ReasonLost, At: now})
		}
		if finished {
			events(session.Event{Type: session.EventRoomFinished, Room: room, At: now})
		}
	}
}

// unmarshalWebhook reads `webhook <url> { secret <s>; events <names...>;
// timeout <d> }`.
func unmarshalWebhook(d *caddyfile.Dispenser) (Webhook, error) {
	var wh Webhook
	var err error
	if wh.URL, err = caddyfileopt.String(d); err != nil {
		return wh, err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "secret":
			wh.Secret, err = caddyfileopt.String(d)
		case "events":
			var v []string
			v, err = caddyfileopt.Strings(d)
			for _, e := range v {
				if err == nil && !webhook.KnownType(e) {
					err = d.Errf("unknown webhook event %q (known: %s)", e, strings.Join(webhook.Types, ", "))
				}
			}
			wh.Events = append(wh.Events, v...)
		case "timeout":
			wh.Timeout, err = caddyfileopt.PositiveDuration(d)
		default:
			err = d.Errf("unknown webhook option %q", d.Val())
		}
		if err != nil {
			return wh, err
		}
	}
	return wh, nil
}

// Webhook metrics, under caddy_webrtc_signaling_webhook_*, labelled by the
// endpoint's host (never its path, query or secret). Process-wide like the
// others (metrics.go).
var webhookMetrics = struct {
	once                  sync.Once
	sent, failed, dropped *prometheus.CounterVec
	queue                 *prometheus.GaugeVec
	latency               *prometheus.HistogramVec
}{}

func initWebhookMetrics() {
	m := &webhookMetrics
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metricsNS, Subsystem: metricsSub, Name: "webhook_" + name, Help: help}
	}
	m.sent = prometheus.NewCounterVec(prometheus.CounterOpts(opts("sent_total", "Webhook events delivered (2xx), by endpoint host and event type.")), []string{"endpoint", "type"})
	m.failed = prometheus.NewCounterVec(prometheus.CounterOpts(opts("failed_total", "Webhook delivery attempts that failed, by endpoint host and event type.")), []string{"endpoint", "type"})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts(opts("dropped_total", "Webhook events given up, by endpoint host, event type and reason (queue_full, retries, rejected, shutdown).")), []string{"endpoint", "type", "reason"})
	m.queue = prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("queue_length", "Webhook events queued or being delivered, by endpoint host.")), []string{"endpoint"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNS, Subsystem: metricsSub, Name: "webhook_delivery_seconds",
		Help:    "Time from an event being queued to its delivery, retries included, by endpoint host.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"endpoint"})
}

func registerWebhookMetrics(reg *prometheus.Registry) error {
	webhookMetrics.once.Do(initWebhookMetrics)
	if reg == nil {
		return nil
	}
	m := &webhookMetrics
	for _, c := range []prometheus.Collector{m.sent, m.failed, m.dropped, m.queue, m.latency} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}

// senderMetrics implements webhook.Metrics for one endpoint.
type senderMetrics struct {
	host    string
	queue   prometheus.Gauge
	latency prometheus.Observer
}

func newWebhookMetrics(rawURL string) *senderMetrics {
	webhookMetrics.once.Do(initWebhookMetrics)
	u, _ := webhook.ParseURL(rawURL) // checked before
	m := &webhookMetrics
	return &senderMetrics{host: u.Host, queue: m.queue.WithLabelValues(u.Host), latency: m.latency.WithLabelValues(u.Host)}
}

func (m *senderMetrics) Sent(typ string, d time.Duration) {
	webhookMetrics.sent.WithLabelValues(m.host, typ).Inc()
	m.latency.Observe(d.Seconds())
}
func (m *senderMetrics) Failed(typ string) { webhookMetrics.failed.WithLabelValues(m.host, typ).Inc() }
func (m *senderMetrics) Dropped(typ, reason string) {
	webhookMetrics.dropped.WithLabelValues(m.host, typ, reason).Inc()
}
func (m *senderMetrics) Queued(delta int) { m.queue.Add(float64(delta)) }

var _ webhook.Metrics = (*senderMetrics)(nil)
