package natshub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/natshub/link"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// ErrUnavailable means NATS cannot be reached, so the hub takes no new
// peers for now; the handler answers such a join `unavailable` and the
// client retries with backoff.
var ErrUnavailable = errors.New("signaling hub: NATS is unreachable")

const (
	// connectWait bounds how long the first join waits for the first
	// connection to NATS.
	connectWait = 5 * time.Second
	// opTimeout bounds one key-value operation or a compare-and-set loop.
	opTimeout = 5 * time.Second
	// setupTimeout bounds binding (or, the first time, creating) the
	// membership bucket: creating a file-backed, maybe replicated stream
	// is a JetStream meta operation that a busy cluster (or a busy
	// machine: seen above 5 s under test load) takes longer over than a
	// key-value operation, and the first join had better wait than fail.
	setupTimeout = 15 * time.Second
	// pingInterval and maxPingsOut make nats.go notice a vanished server
	// within about (maxPingsOut+1)*pingInterval = 9s.
	pingInterval = 3 * time.Second
	maxPingsOut  = 2
	// reconnectWait is the pause between reconnect attempts.
	reconnectWait = time.Second
	// statsTTL is how long cluster-wide counts are reused: counting reads
	// every room of the hub.
	statsTTL = 2 * time.Second
	// drainWait bounds Shutdown's wait for the connection to drain.
	drainWait = 5 * time.Second
)

// config is what a hub needs from its backend.
type config struct {
	urls        []string
	prefix      string
	nodeTimeout time.Duration
	replicas    int
	options     []nats.Option
}

// Hub is a hub.Hub whose rooms span every node sharing the NATS
// prefix and hub name.
type Hub struct {
	cfg    config
	name   string
	logger *zap.Logger
	node   string // this instance's id, random
	keyPfx string // key prefix of this hub's rooms in the bucket

	startMu sync.Mutex // serializes connecting and shutting down
	nc      *nats.Conn
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	subs    []*nats.Subscription
	stop    chan struct{}
	stopped chan struct{}
	ready   atomic.Bool
	// connecting says a connection Stats asked for is under way.
	connecting atomic.Bool

	mu     sync.Mutex
	views  map[string]*roomView // rooms with a peer of this node, by key
	closed bool

	// remoteRelay is held for reading while the dispatcher relays a frame
	// from a remote peer; removing a remote member takes it for writing
	// before announcing peer-left, so no frame of that peer follows.
	remoteRelay sync.RWMutex

	nodes   nodeTable
	inbound link.Receiver // the links from other nodes
	seq     atomic.Uint64 // orders local joins

	statsMu sync.Mutex
	stats   hub.HubStats
	statsAt time.Time

	kick chan struct{} // asks the maintenance loop to reconcile now

	tunnels tunnelTable

	// sweepWatch is hub.Sweeps' watch; nil for none.
	sweepWatch atomic.Pointer[sweepWatch]
}

type sweepWatch func(room string, gone []wire.PeerInfo, finished bool)

var _ hub.Sweeps = (*Hub)(nil)

// WatchSweeps implements hub.Sweeps.
func (h *Hub) WatchSweeps(watch func(room string, gone []wire.PeerInfo, finished bool)) {
	if watch == nil {
		h.sweepWatch.Store(nil)
		return
	}
	w := sweepWatch(watch)
	h.sweepWatch.Store(&w)
}

// swept reports the members a sweep of this node removed from a room,
// and whether that emptied it.
func (h *Hub) swept(room string, gone []member, finished bool) {
	w := h.sweepWatch.Load()
	if w == nil || (len(gone) == 0 && !finished) {
		return
	}
	infos := make([]wire.PeerInfo, len(gone))
	for i, m := range gone {
		infos[i] = m.info()
	}
	(*w)(room, infos, finished)
}

var _ hub.Hub = (*Hub)(nil)

func newHub(name string, cfg config, logger *zap.Logger) *Hub {
	sum := sha256.Sum256([]byte(name))
	h := &Hub{
		cfg:    cfg,
		name:   name,
		logger: logger.With(zap.String("hub", name)),
		node:   nodeName(hostname()),
		keyPfx: "h" + hex.EncodeToString(sum[:8]),
		views:  make(map[string]*roomView),
		kick:   make(chan struct{}, 1),
	}
	h.nodes.init(h)
	return h
}

// hostname is the host's name, or none.
func hostname() string {
	h, _ := os.Hostname()
	return h
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// nodeName names this instance: the host's name, which the rooms API
// shows as the server holding a member, and a random part, since one
// host may run several servers and a restarted one is a new node. Only
// letters, digits, - and _ are kept: the name is a NATS subject token.
func nodeName(host string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	var clean []rune
	for _, r := range host {
		switch {
		case len(clean) == maxHostInNode:
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			clean = append(clean, r)
		case r == '.':
			clean = append(clean, '-')
		}
	}
	if len(clean) == 0 {
		return hex.EncodeToString(b)
	}
	return string(clean) + "-" + hex.EncodeToString(b)
}

// maxHostInNode bounds the host's part of a node name.
const maxHostInNode = 40

// roomKey names a room in the bucket: the hub's prefix and a hash of the
// room name, since room names may hold characters keys may not.
func (h *Hub) roomKey(room string) string {
	sum := sha256.Sum256([]byte(room))
	return h.keyPfx + "." + hex.EncodeToString(sum[:16])
}

func (h *Hub) bucketName() string          { return h.cfg.prefix + "_rooms" }
func (h *Hub) nodeSubject(n string) string { return h.cfg.prefix + ".node." + n }
func (h *Hub) hbSubject(n string) string   { return h.cfg.prefix + ".hb." + n }

// ensureReady connects on first use (a peer joins, a client resumes or
// posts through this server) and sets up the bucket, the subscriptions
// and the maintenance loop.
func (h *Hub) ensureReady() error {
	if h.ready.Load() {
		return nil
	}
	h.startMu.Lock()
	defer h.startMu.Unlock()
	if h.isClosed() {
		return hub.ErrHubClosed
	}
	if h.ready.Load() {
		return nil
	}
	if h.nc == nil {
		nc, err := nats.Connect(joinURLs(h.cfg.urls), h.natsOptions()...)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		h.nc = nc
		if nc.IsConnected() {
			h.nodes.connected()
		}
	}
	if !h.nodes.waitConnected(connectWait) {
		return ErrUnavailable
	}
	if err := h.setup(); err != nil {
		return err
	}
	h.ready.Store(true)
	return nil
}

// connected connects on first use and reports whether NATS can be
// reached now: what needs NATS at once (a join, a tunnel, a post) fails
// with ErrUnavailable when not, or ErrHubClosed after Shutdown.
func (h *Hub) connected() error {
	if h.isClosed() {
		return hub.ErrHubClosed
	}
	if err := h.ensureReady(); err != nil {
		return err
	}
	if !h.nodes.isConnected() {
		return ErrUnavailable
	}
	return nil
}

// connectSoon connects in the background, for what needs NATS but must
// not wait for it: counting a cluster's rooms for the admin endpoint of a
// server no peer joined yet.
func (h *Hub) connectSoon() {
	if h.ready.Load() || h.isClosed() || !h.connecting.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer h.connecting.Store(false)
		_ = h.ensureReady() // a failure is retried on the next use
	}()
}

func joinURLs(urls []string) string {
	s := ""
	for i, u := range urls {
		if i > 0 {
			s += ","
		}
		s += u
	}
	return s
}

func (h *Hub) natsOptions() []nats.Option {
	opts := []nats.Option{
		nats.Name("caddy-webrtc " + h.name + " " + h.node),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(reconnectWait),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(maxPingsOut),
		nats.ConnectHandler(func(*nats.Conn) { h.onConnect() }),
		nats.ReconnectHandler(func(*nats.Conn) { h.onConnect() }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { h.onDisconnect(err) }),
	}
	return append(opts, h.cfg.options...)
}

// setup binds the bucket, subscribes and starts the maintenance loop.
func (h *Hub) setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	js, err := jetstream.New(h.nc)
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, h.bucketName())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      h.bucketName(),
			Description: "caddy-webrtc signaling room membership",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    h.cfg.replicas,
		})
	}
	if err != nil {
		return fmt.Errorf("%w: membership bucket %s: %v", ErrUnavailable, h.bucketName(), err)
	}
	h.js, h.kv = js, kv
	subs := []struct {
		subject string
		handle  nats.MsgHandler
	}{
		{h.nodeSubject(h.node), h.onNodeMsg},
		{h.hbSubject("*"), h.nodes.onHeartbeat},
		{h.postSubject(), h.onPost},
		{h.actionSubject(h.node), h.onAction},
	}
	var done []*nats.Subscription
	for _, s := range subs {
		sub, err := h.nc.Subscribe(s.subject, s.handle)
		if err != nil {
			for _, d := range done {
				_ = d.Unsubscribe()
			}
			return err
		}
		done = append(done, sub)
	}
	h.subs = done
	h.stop, h.stopped = make(chan struct{}), make(chan struct{})
	go h.maintain()
	h.nodes.hello()
	return nil
}

func (h *Hub) onConnect() {
	h.nodes.connected()
	if h.ready.Load() {
		// Subscriptions are restored by nats.go before this runs; greet the
		// others so both sides know each can hear the other, and put back
		// any of our members dropped while we were away.
		h.nodes.hello()
		h.trigger()
	}
}

func (h *Hub) onDisconnect(err error) {
	h.nodes.disconnected()
	if err != nil {
		h.logger.Warn("lost NATS connection; reconnecting", zap.Error(err))
	}
}

// trigger asks the maintenance loop to reconcile every room now.
func (h *Hub) trigger() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *Hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// opContext bounds one NATS operation.
func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// Stats implements hub.Hub. Rooms and Peers are cluster-wide, read
// from the bucket at most every statsTTL. A hub not connected yet starts
// connecting, without waiting: it counts from a later call.
func (h *Hub) Stats() hub.HubStats {
	h.connectSoon()
	local := h.localPeers()
	h.statsMu.Lock()
	defer h.statsMu.Unlock()
	if time.Since(h.statsAt) > statsTTL && h.ready.Load() && h.nodes.isConnected() && !h.isClosed() {
		if rooms, peers, err := h.count(); err == nil {
			h.stats.Rooms, h.stats.Peers, h.statsAt = rooms, peers, time.Now()
		}
	}
	st := h.stats
	st.Backend, st.LocalPeers = backendName, local
	return st
}

// count reads every room of the hub from the bucket.
func (h *Hub) count() (rooms, peers int, err error) {
	ctx, cancel := opContext()
	defer cancel()
	all, err := h.loadRooms(ctx)
	for _, st := range all {
		rooms++
		peers += len(st.Members)
	}
	return rooms, peers, err
}

// loadRooms reads every room of the hub that has members from the bucket.
func (h *Hub) loadRooms(ctx context.Context) ([]roomState, error) {
	keys, err := h.listKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []roomState
	for _, k := range keys {
		st, _, err := h.load(ctx, k)
		if err != nil {
			return nil, err
		}
		if len(st.Members) > 0 {
			out = append(out, st)
		}
	}
	return out, nil
}

func (h *Hub) listKeys(ctx context.Context) ([]string, error) {
	lister, err := h.kv.ListKeysFiltered(ctx, h.keyPfx+".*")
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

func (h *Hub) localPeers() int {
	h.mu.Lock()
	views := h.viewList()
	h.mu.Unlock()
	n := 0
	for _, v := range views {
		v.mu.Lock()
		for _, l := range v.locals {
			if !l.left {
				n++
			}
		}
		v.mu.Unlock()
	}
	return n
}

// viewList copies the views; the caller holds h.mu.
func (h *Hub) viewList() []*roomView {
	out := make([]*roomView, 0, len(h.views))
	for _, v := range h.views {
		out = append(out, v)
	}
	return out
}

// Shutdown implements hub.Hub: local peers are closed with 1001 and
// removed from their rooms (the others see peer-left), heartbeats stop and
// the connection drains.
func (h *Hub) Shutdown() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	views := h.viewList()
	h.mu.Unlock()
	var peers []hub.Peer
	for _, v := range views {
		v.mu.Lock()
		for _, l := range v.locals {
			if !l.left {
				l.left = true
				peers = append(peers, l.peer)
			}
		}
		v.mu.Unlock()
	}
	for _, p := range peers {
		p.Close(wire.CloseGoingAway, "server shutting down")
	}
	h.closeTunnels()
	h.startMu.Lock()
	defer h.startMu.Unlock()
	if h.ready.Load() && h.nodes.isConnected() {
		for _, v := range views {
			h.reconcile(v)
		}
	}
	h.mu.Lock()
	h.views = make(map[string]*roomView)
	h.mu.Unlock()
	h.disconnect()
}

// disconnect stops the maintenance loop and drains the connection; the
// caller holds startMu.
func (h *Hub) disconnect() {
	if h.stop != nil {
		close(h.stop)
		<-h.stopped
	}
	if h.nc == nil {
		return
	}
	closed := make(chan struct{})
	h.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if !h.ready.Load() || h.nc.Drain() != nil {
		h.nc.Close()
	}
	select {
	case <-closed:
	case <-time.After(drainWait):
		h.nc.Close()
	}
}
