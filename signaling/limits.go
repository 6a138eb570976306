package signaling

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// Defaults of the limits: far above what a six-person call needs (a join
// with ICE gathering sends a few dozen frames in a burst, then a trickle),
// low enough that one client cannot monopolise the server.
const (
	DefaultFramesPerSecond  = 20
	DefaultBurst            = 100
	DefaultConnectionsPerIP = 50
	// sustainedAbuse is how long a peer may go on exceeding its frame rate,
	// frames being dropped all along, before it is disconnected (4429).
	sustainedAbuse = 10 * time.Second
	// abuseGap: a pause in dropped frames this long ends a stretch of abuse.
	abuseGap = time.Second
)

// Limits bound what one client may take from a hub.
type Limits struct {
	// FramesPerSecond is each peer's sustained frame rate (token bucket);
	// frames beyond it are dropped with a rate_limited error. Default 20.
	FramesPerSecond float64 `json:"frames_per_second,omitempty"`
	// Burst is the bucket's size: the frames a peer may send at once, such
	// as the candidates of an ICE gathering. Default 100.
	Burst int `json:"burst,omitempty"`
	// ConnectionsPerIP caps a client IP's simultaneous connections; the
	// next upgrade is answered 429. The IP is the one Caddy determines
	// (trusted_proxies), not a raw header. Default 50.
	ConnectionsPerIP int `json:"connections_per_ip,omitempty"`
	// MaxRooms caps the hub's rooms; 0 means unlimited.
	MaxRooms int `json:"max_rooms,omitempty"`
	// MaxPeersTotal caps the hub's peers over all rooms; 0 means unlimited.
	MaxPeersTotal int `json:"max_peers_total,omitempty"`
}

// withDefaults fills in what is unset.
func (l Limits) withDefaults() Limits {
	if l.FramesPerSecond == 0 {
		l.FramesPerSecond = DefaultFramesPerSecond
	}
	if l.Burst == 0 {
		l.Burst = DefaultBurst
	}
	if l.ConnectionsPerIP == 0 {
		l.ConnectionsPerIP = DefaultConnectionsPerIP
	}
	return l
}

// validate checks the limits after defaults.
func (l Limits) validate() error {
	switch {
	case l.FramesPerSecond < 0:
		return fmt.Errorf("limits: frames_per_second must be positive, got %g", l.FramesPerSecond)
	case l.Burst < 1:
		return fmt.Errorf("limits: burst must be at least 1, got %d", l.Burst)
	case l.ConnectionsPerIP < 1:
		return fmt.Errorf("limits: connections_per_ip must be at least 1, got %d", l.ConnectionsPerIP)
	case l.MaxRooms < 0 || l.MaxPeersTotal < 0:
		return fmt.Errorf("limits: max_rooms and max_peers_total must be 0 (unlimited) or more")
	}
	return nil
}

// frameRate is one peer's inbound frame budget.
type frameRate struct {
	bucket       *rate.Limiter
	abusingSince time.Time // start of the current stretch of dropped frames
	lastDropped  time.Time
}

func newFrameRate(l Limits) *frameRate {
	return &frameRate{bucket: rate.NewLimiter(rate.Limit(l.FramesPerSecond), l.Burst)}
}

// admit reports whether a frame arriving now fits the budget, and whether
// the peer has been over it for so long that it must go.
func (f *frameRate) admit(now time.Time) (ok, abusive bool) {
	if f.bucket.AllowN(now, 1) {
		return true, false
	}
	if now.Sub(f.lastDropped) > abuseGap {
		f.abusingSince = now
	}
	f.lastDropped = now
	return false, now.Sub(f.abusingSince) >= sustainedAbuse
}

// frameGate holds one peer's frames to max_message_size and the frame
// rate: a session's, and a front's for a client whose session lives on
// another server (tunnel.go), so that a flood stops before it crosses to
// that server.
type frameGate struct {
	rate *frameRate // made on the first frame: an idle peer needs none
}

// admit judges a frame of size bytes arriving now.
func (g *frameGate) admit(size int, maxSize int64, l Limits, m *hubMetrics) verdict {
	if int64(size) > maxSize {
		return verdict{wire.CodeTooLarge, "message exceeds the maximum size", wire.CloseTooLarge}
	}
	if g.rate == nil {
		g.rate = newFrameRate(l)
	}
	if ok, abusive := g.rate.admit(time.Now()); !ok {
		m.rateLimited.Inc()
		if abusive {
			return verdict{wire.CodeRateLimited, "too many frames for too long", wire.CloseRateLimited}
		}
		return verdict{wire.CodeRateLimited, "too many frames: this one was dropped", 0}
	}
	return verdict{}
}

// ipConns counts what client IPs hold of one hub (see hubState).
type ipConns struct {
	mu    sync.Mutex
	count map[string]int // made on first use
}

// acquire takes a slot for key unless max are taken; release gives it back.
func (c *ipConns) acquire(key string, max int) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count[key] >= max {
		return nil, false
	}
	if c.count == nil {
		c.count = make(map[string]int)
	}
	c.count[key]++
	return sync.OnceFunc(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.count[key]--; c.count[key] == 0 {
			delete(c.count, key)
		}
	}), true
}
