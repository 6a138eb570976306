package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults of Options.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultQueueSize    = 4096
	DefaultConcurrency  = 4
	DefaultMaxAttempts  = 8
	DefaultBackoffBase  = 500 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
	DefaultMaxRetryWait = time.Minute
	DefaultDrainTimeout = 5 * time.Second
)

// Why an event was dropped, the metrics' reason label.
const (
	DropQueueFull = "queue_full" // the endpoint's queue was full
	DropRetries   = "retries"    // every attempt failed
	DropRejected  = "rejected"   // the endpoint answered a status not worth retrying (4xx but 408 and 429)
	DropShutdown  = "shutdown"   // the sender closed before it went out
)

// Endpoint is where events go and how they are signed.
type Endpoint struct {
	URL string // absolute http(s)
	Key []byte // the HMAC key (DecodeSecret)
	// Events lists the event types sent; empty: all of them.
	Events []string
	// Timeout bounds each attempt; 0: DefaultTimeout.
	Timeout time.Duration
}

// Metrics is what a Sender counts; the Caddy face labels it with the
// endpoint.
type Metrics interface {
	Sent(typ string, latency time.Duration) // delivered; latency from Enqueue
	Failed(typ string)                      // an attempt failed
	Dropped(typ, reason string)             // given up
	Queued(delta int)                       // events waiting or on their way: +1 queued, -1 sent or dropped
}

// Options tune a Sender; zero values take the defaults.
type Options struct {
	QueueSize   int // events waiting at most; beyond, Enqueue drops
	Concurrency int // rooms delivered to in parallel
	MaxAttempts int // per event
	// BackoffBase doubles after each failed attempt up to BackoffMax; the
	// wait is a random duration between half of it and all of it. A
	// Retry-After the endpoint answers replaces it, up to MaxRetryWait.
	BackoffBase, BackoffMax, MaxRetryWait time.Duration
	// DrainTimeout bounds how long Close lets queued events go out.
	DrainTimeout time.Duration
	Client       *http.Client
	Metrics      Metrics
	Logger       *zap.Logger
	// Wait waits d or until ctx is done (then returns its error); tests
	// replace it to run retries at once.
	Wait func(ctx context.Context, d time.Duration) error
	Now  func() time.Time
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.QueueSize, DefaultQueueSize)
	def(&o.Concurrency, DefaultConcurrency)
	def(&o.MaxAttempts, DefaultMaxAttempts)
	defD(&o.BackoffBase, DefaultBackoffBase)
	defD(&o.BackoffMax, DefaultBackoffMax)
	defD(&o.MaxRetryWait, DefaultMaxRetryWait)
	defD(&o.DrainTimeout, DefaultDrainTimeout)
	if o.Client == nil {
		o.Client = &http.Client{
			// A redirect would turn the POST into a GET: an endpoint
			// that redirects is misconfigured, which its status says.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Wait == nil {
		o.Wait = wait
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type nopMetrics struct{}

func (nopMetrics) Sent(string, time.Duration) {}
func (nopMetrics) Failed(string)              {}
func (nopMetrics) Dropped(string, string)     {}
func (nopMetrics) Queued(int)                 {}

// Sender delivers events to one endpoint. Enqueue never blocks: events
// wait in a bounded queue. A room's events go out one after another, in
// the order queued; different rooms' go out in parallel, up to
// Options.Concurrency. Workers run only while events wait, so an idle
// Sender holds no goroutine.
type Sender struct {
	ep    Endpoint
	opt   Options
	host  string // what logs name the endpoint by: never its path or query
	wants map[string]bool

	ctx    context.Context // canceled when draining ran out of time
	cancel context.CancelFunc

	mu      sync.Mutex
	rooms   map[string][]queued // per room, in order; present while a worker has or will have it
	ready   []string            // rooms waiting for a worker
	n       int                 // events in rooms
	workers int
	closed  bool
	wg      sync.WaitGroup
	done    chan struct{} // closed when a closed Sender's workers are gone

	// dropLog paces the drop warnings (dropLogEvery).
	dropLog struct {
		sync.Mutex
		last       time.Time
		suppressed int
	}
}

// dropLogEvery is how often at most a Sender logs a dropped event: an
// endpoint that is down with a full queue drops as fast as events come,
// and each is counted in the metrics anyway. The next line says how many
// went unlogged.
const dropLogEvery = time.Second

type queued struct {
	ev Event
	at time.Time // enqueued
}

// New returns a Sender for ep; ep.URL must be an absolute http(s) URL.
func New(ep Endpoint, opt Options) (*Sender, error) {
	u, err := ParseURL(ep.URL)
	if err != nil {
		return nil, err
	}
	if len(ep.Key) == 0 {
		return nil, fmt.Errorf("webhook: no signing key")
	}
	if ep.Timeout <= 0 {
		ep.Timeout = DefaultTimeout
	}
	s := &Sender{ep: ep, opt: opt.withDefaults(), host: u.Host, rooms: make(map[string][]queued), done: make(chan struct{})}
	if len(ep.Events) > 0 {
		s.wants = make(map[string]bool)
		for _, t := range ep.Events {
			if !KnownType(t) {
				return nil, fmt.Errorf("webhook: unknown event %q (known: %s)", t, strings.Join(Types, ", "))
			}
			s.wants[t] = true
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// ParseURL checks an endpoint's URL: absolute, http or https, with a host.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("webhook url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook url must be an absolute http or https URL")
	}
	return u, nil
}

// Host is the endpoint's host (and port), what metrics and logs name it by.
func (s *Sender) Host() string { return s.host }

// Wants reports whether the endpoint takes events of type typ.
func (s *Sender) Wants(typ string) bool { return s.wants == nil || s.wants[typ] }

// Enqueue queues ev for delivery, if the endpoint wants its type, and
// reports whether it did; a full queue or a closed Sender drops it
// (counted, logged).
func (s *Sender) Enqueue(ev Event) bool {
	if !s.Wants(ev.Type) {
		return false
	}
	s.mu.Lock()
	if s.closed || s.n >= s.opt.QueueSize {
		reason := DropQueueFull
		if s.closed {
			reason = DropShutdown
		}
		s.mu.Unlock()
		s.drop(ev, reason, 0, nil)
		return false
	}
	q, busy := s.rooms[ev.Room]
	s.rooms[ev.Room] = append(q, queued{ev: ev, at: s.opt.Now()})
	if !busy {
		s.ready = append(s.ready, ev.Room)
	}
	s.n++
	if s.workers < s.opt.Concurrency && len(s.ready) > 0 {
		s.workers++
		s.wg.Add(1)
		go s.work()
	}
	s.mu.Unlock()
	s.opt.Metrics.Queued(1)
	return true
}

// work delivers the head event of a ready room at a time, until no room is
// ready.
func (s *Sender) work() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(s.ready) == 0 {
			s.workers--
			s.mu.Unlock()
			return
		}
		room := s.ready[0]
		s.ready = s.ready[1:]
		item := s.rooms[room][0]
		s.mu.Unlock()

		s.deliver(item)

		s.mu.Lock()
		rest := s.rooms[room][1:]
		if len(rest) == 0 {
			delete(s.rooms, room)
		} else {
			s.rooms[room] = rest
			s.ready = append(s.ready, room) // behind the other rooms waiting
		}
		s.n--
		s.mu.Unlock()
		s.opt.Metrics.Queued(-1)
	}
}

// deliver posts one event until it is accepted, refused for good, or the
// attempts run out.
func (s *Sender) deliver(item queued) {
	ev := item.ev
	body, err := json.Marshal(ev)
	if err != nil { // plain strings: cannot happen
		s.drop(ev, DropRejected, 0, err)
		return
	}
	for attempt := 1; ; attempt++ {
		retry, after, err := s.post(ev.ID, body)
		if err == nil {
			s.opt.Metrics.Sent(ev.Type, s.opt.Now().Sub(item.at))
			return
		}
		s.opt.Metrics.Failed(ev.Type)
		switch {
		case s.ctx.Err() != nil:
			s.drop(ev, DropShutdown, attempt, err)
			return
		case !retry:
			s.drop(ev, DropRejected, attempt, err)
			return
		case attempt >= s.opt.MaxAttempts:
			s.drop(ev, DropRetries, attempt, err)
			return
		}
		d := s.backoff(attempt)
		if after >= 0 {
			d = after
		}
		if err := s.opt.Wait(s.ctx, min(d, s.opt.MaxRetryWait)); err != nil {
			s.drop(ev, DropShutdown, attempt, err)
			return
		}
	}
}

// backoff is the wait after failed attempt n (from 1): BackoffBase
// doubled n-1 times, at most BackoffMax, with jitter (half to all of it).
func (s *Sender) backoff(n int) time.Duration {
	d := s.opt.BackoffBase
	for i := 1; i < n && d < s.opt.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.opt.BackoffMax)
	half := d / 2
	return half + rand.N(d-half+1)
}

// statusError is an endpoint's answer other than 2xx.
type statusError int

func (e statusError) Error() string { return "endpoint answered " + strconv.Itoa(int(e)) }

// post makes one attempt. retry says a failure is worth another (network
// errors, 5xx, 408, 429); after is the Retry-After the endpoint asked for,
// or -1.
func (s *Sender) post(id string, body []byte) (retry bool, after time.Duration, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.ep.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.ep.URL, bytes.NewReader(body))
	if err != nil {
		return false, -1, err
	}
	ts := s.opt.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "caddy-webrtc-webhooks")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(s.ep.Key, id, ts, body))
	resp, err := s.opt.Client.Do(req)
	if err != nil {
		if ue, ok := err.(*url.Error); ok { // what Client.Do returns
			err = ue.Err // without the URL, which may carry credentials
		}
		return true, -1, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	c := resp.StatusCode
	if c >= 200 && c < 300 {
		return false, -1, nil
	}
	retry = c >= 500 || c == http.StatusTooManyRequests || c == http.StatusRequestTimeout
	return retry, retryAfter(resp.Header.Get("Retry-After"), s.opt.Now()), statusError(c)
}

// retryAfter parses a Retry-After value, seconds or an HTTP date; -1 when
// there is none.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return -1
		}
		return time.Duration(min(n, 1<<30)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

// drop gives up on ev: counted, and logged once, without the endpoint's
// path, query or key.
func (s *Sender) drop(ev Event, reason string, attempts int, err error) {
	s.opt.Metrics.Dropped(ev.Type, reason)
	fields := []zap.Field{
		zap.String("endpoint", s.host), zap.String("event", ev.ID), zap.String("type", ev.Type),
		zap.String("room", ev.Room), zap.String("reason", reason), zap.Int("attempts", attempts),
	}
	if err != nil {
		fields = append(fields, zap.String("error", err.Error()))
	}
	s.dropLog.Lock()
	now := s.opt.Now()
	if !s.dropLog.last.IsZero() && now.Sub(s.dropLog.last) < dropLogEvery {
		s.dropLog.suppressed++
		s.dropLog.Unlock()
		return
	}
	if s.dropLog.suppressed > 0 {
		fields = append(fields, zap.Int("unlogged_drops_before", s.dropLog.suppressed))
	}
	s.dropLog.last, s.dropLog.suppressed = now, 0
	s.dropLog.Unlock()
	s.opt.Logger.Warn("webhook event dropped", fields...)
}

// Close stops taking events and lets those queued go out for up to
// Options.DrainTimeout; what is left then is dropped (DropShutdown). It
// does not wait: Done is closed when the last worker is gone.
func (s *Sender) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	go func() {
		finished := make(chan struct{})
		go func() {
			s.wg.Wait() // no Add after closed
			close(finished)
		}()
		t := time.NewTimer(s.opt.DrainTimeout)
		defer t.Stop()
		select {
		case <-finished:
		case <-t.C:
			s.cancel()
			<-finished
		}
		s.cancel()
		close(s.done)
	}()
}

// Done is closed once a closed Sender has delivered or dropped everything.
func (s *Sender) Done() <-chan struct{} { return s.done }
