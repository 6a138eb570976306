package session

import (
	"sync"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
	"golang.org/x/time/rate"
)

const (
	// sustainedAbuse is how long a peer may go on exceeding its frame rate,
	// frames being dropped all along, before it is disconnected (4429).
	sustainedAbuse = 10 * time.Second
	// abuseGap: a pause in dropped frames this long ends a stretch of abuse.
	abuseGap = time.Second
)

// frameRate is one peer's inbound frame budget.
type frameRate struct {
	bucket       *rate.Limiter
	abusingSince time.Time // start of the current stretch of dropped frames
	lastDropped  time.Time
}

func newFrameRate(framesPerSecond float64, burst int) *frameRate {
	return &frameRate{bucket: rate.NewLimiter(rate.Limit(framesPerSecond), burst)}
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

// Gate holds one peer's frames to max_message_size and the frame
// rate: a session's, and a front's for a client whose session lives on
// another server (package tunnel), so that a flood stops before it crosses to
// that server.
type Gate struct {
	rate *frameRate // made on the first frame: an idle peer needs none
}

// Admit judges a frame of size bytes arriving now, by cfg's limits.
func (g *Gate) Admit(size int, cfg *Config) Verdict {
	if int64(size) > cfg.MaxMessageSize {
		return Verdict{wire.CodeTooLarge, "message exceeds the maximum size", wire.CloseTooLarge}
	}
	if g.rate == nil {
		g.rate = newFrameRate(cfg.FramesPerSecond, cfg.Burst)
	}
	if ok, abusive := g.rate.admit(time.Now()); !ok {
		cfg.Metrics.RateLimited()
		if abusive {
			return Verdict{wire.CodeRateLimited, "too many frames for too long", wire.CloseRateLimited}
		}
		return Verdict{wire.CodeRateLimited, "too many frames: this one was dropped", 0}
	}
	return Verdict{}
}

// AddrSlots counts what client IPs hold of one hub (see hubState).
type AddrSlots struct {
	mu    sync.Mutex
	count map[string]int // made on first use
}

// Acquire takes a slot for key unless max are taken; release gives it back.
func (c *AddrSlots) Acquire(key string, max int) (release func(), ok bool) {
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
