package loadtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Phases of a run after the ramp.
const (
	// drainPoll is how often the drain checks the counters.
	drainPoll = 20 * time.Millisecond
	// heartbeatInterval keeps PeerJS connections alive (its server drops
	// clients silent for alive_timeout, 60 s by default).
	heartbeatInterval = 20 * time.Second
	// closeWait bounds the wait for readers to end after closing.
	closeWait = 10 * time.Second
	// bufferSize is the WebSocket read and write buffer of each peer:
	// a signal fits, and ten thousand idle peers stay cheap.
	bufferSize = 2048
)

// run is the state of one Run.
type run struct {
	cfg    Config
	proto  protocol
	base   *url.URL
	dialer *websocket.Dialer
	start  time.Time // origin of the payload timestamps
	pad    string
	peers  []*peer
	server *serverProbe

	closing                    atomic.Bool
	connected, failed, dropped atomic.Int64
	sent, delivered            atomic.Uint64
	duplicated, misordered     atomic.Uint64
	joinHist, relayHist        Histogram
	churn                      churnState

	mu           sync.Mutex
	failures     map[string]int // why peers did not join
	serverErrors map[string]int // error frames after joining
	firstErr     string
}

// Run performs the load test cfg describes, printing progress lines to
// progress (may be nil), and returns the summary. It returns an error only
// when the test cannot run at all; failing peers are in the summary.
func Run(ctx context.Context, cfg Config, progress io.Writer) (Summary, error) {
	if progress == nil {
		progress = io.Discard
	}
	r, err := newRun(cfg)
	if err != nil {
		return Summary{}, err
	}
	checkFileLimit(r.cfg.Peers+r.cfg.ChurnPeers, progress)
	stopProgress := r.startProgress(progress)
	r.server.sample("before")
	r.ramp(ctx)
	r.server.sample("ramp")
	measured := r.measure(ctx)
	r.server.sample("end")
	r.drain(ctx)
	stopProgress()
	r.closeAll()
	s := r.summary(measured)
	if s.Failures[tooManyCode] > 0 {
		fmt.Fprintln(progress, hint429)
	}
	return s, nil
}

func newRun(cfg Config) (*run, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	proto, err := newProtocol(cfg.Protocol)
	if err != nil {
		return nil, err
	}
	base, _ := url.Parse(cfg.URL) // checked by withDefaults
	r := &run{
		cfg:          cfg,
		proto:        proto,
		base:         base,
		start:        time.Now(),
		pad:          strings.Repeat("x", max(cfg.Size-payloadOverhead, 0)),
		server:       newServerProbe(cfg.PID),
		failures:     map[string]int{},
		serverErrors: map[string]int{},
	}
	r.dialer = &websocket.Dialer{
		HandshakeTimeout: handshakeTimeout,
		ReadBufferSize:   bufferSize,
		WriteBufferSize:  bufferSize,
		// The internal CA of a test server is not in the system roots.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: cfg.Insecure},
	}
	r.makePeers()
	return r, nil
}

// makePeers groups the peers in rooms of RoomSize with unique names.
func (r *run) makePeers() {
	r.peers = make([]*peer, r.cfg.Peers)
	var rm *room
	for i := range r.peers {
		if i%r.cfg.RoomSize == 0 {
			rm = &room{name: r.cfg.RoomPrefix + "-" + strconv.Itoa(i/r.cfg.RoomSize)}
		}
		p := &peer{
			index: i, slot: len(rm.members), room: rm,
			recv: map[int]*seqTracker{}, wake: make(chan struct{}, 1), done: make(chan struct{}),
		}
		rm.members = append(rm.members, p)
		r.peers[i] = p
	}
	for _, p := range r.peers {
		p.seqTo = make([]uint64, len(p.room.members))
		p.next = p.slot
	}
}

// ramp dials every peer at most Ramp per second, Dials at a time, and
// returns when all have joined or failed.
func (r *run) ramp(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / r.cfg.Ramp)
	sem := make(chan struct{}, r.cfg.Dials)
	var wg sync.WaitGroup
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i, p := range r.peers {
		if i > 0 {
			select {
			case <-ctx.Done():
				r.fail("canceled", ctx.Err())
				continue
			case <-tick.C:
			}
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r.connect(ctx, p)
		})
	}
	wg.Wait()
}

// measure runs the senders for Duration and returns the time they ran.
func (r *run) measure(ctx context.Context) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	if r.cfg.Rate > 0 || r.cfg.FlatOut {
		for _, p := range r.peers {
			if p.conn != nil {
				wg.Go(func() { r.sendLoop(ctx, p) })
			}
		}
	}
	if hb := r.proto.heartbeat(); hb != nil {
		wg.Go(func() { r.heartbeats(ctx, hb) })
	}
	if r.cfg.ChurnPeers > 0 {
		wg.Go(func() { r.churnAll(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	return time.Since(start)
}

// heartbeats keeps every connected peer alive on servers that want it.
func (r *run) heartbeats(ctx context.Context, hb []byte) {
	tick := time.NewTicker(heartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, p := range r.peers {
			if p.id.Load() != nil {
				_ = p.write(hb) // a dead peer's reader counts it
			}
		}
	}
}

// drain waits until every signal sent has arrived, or Drain has passed.
func (r *run) drain(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.Drain)
	for r.delivered.Load() < r.sent.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(drainPoll)
	}
}

// closeAll closes every connection and waits for the readers.
func (r *run) closeAll() {
	r.closing.Store(true)
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.cfg.Dials)
	for _, p := range r.peers {
		if p.conn == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			p.close()
		})
	}
	wg.Wait()
	timeout := time.NewTimer(closeWait)
	defer timeout.Stop()
	for _, p := range r.peers {
		if p.conn == nil {
			continue
		}
		select {
		case <-p.done:
		case <-timeout.C:
			return
		}
	}
}

// fail records a peer that did not join.
func (r *run) fail(code string, err error) {
	r.failed.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures[code]++
	if r.firstErr == "" && err != nil {
		r.firstErr = err.Error()
	}
}

// count adds one to a code's counter in m.
func (r *run) count(m *map[string]int, code string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	(*m)[code]++
}
