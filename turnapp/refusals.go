package turnapp

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// refusalLogInterval is how often one client may put the same refusal in
// the info log. A variable so tests can shorten it.
var refusalLogInterval = 10 * time.Second

// maxRefusalKeys bounds the (message, client IP) pairs remembered per
// interval. Over UDP the source address is the sender's to choose, so the
// set must not grow with it; past the bound refusals are only counted. It
// is also the most info lines a flood can cause per interval.
const maxRefusalKeys = 100

// refusalLog writes the log lines that clients can cause at will (refused
// credentials and peers, failed requests): at info level once per message
// and client IP per interval, and the rest at debug level only. At the end
// of an interval one info line counts the refusals it kept out of the info
// log, so a flood shows as a few lines instead of one per packet.
type refusalLog struct {
	logger   func() *zap.Logger
	interval time.Duration

	mu         sync.Mutex
	seen       map[refusalKey]struct{} // nil between intervals
	suppressed int
	generation int // which interval the pending timer ends
	timer      *time.Timer
}

type refusalKey struct {
	msg string
	ip  netip.Addr
}

func newRefusalLog(logger func() *zap.Logger) *refusalLog {
	return &refusalLog{logger: logger, interval: refusalLogInterval}
}

// info logs msg about client, at info level if it is the first such line
// for the client's IP in this interval, else at debug level.
func (r *refusalLog) info(msg string, client net.Addr, fields ...zap.Field) {
	fields = append(fields, zap.String("client", client.String()))
	if r.admit(refusalKey{msg: msg, ip: addrIP(client)}) {
		r.logger().Info(msg, fields...)
		return
	}
	r.logger().Debug(msg, fields...)
}

// admit reports whether k gets an info line, starting an interval if none
// is running.
func (r *refusalLog) admit(k refusalKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = make(map[refusalKey]struct{})
		gen := r.generation
		r.timer = time.AfterFunc(r.interval, func() { r.endInterval(gen) })
	}
	if _, dup := r.seen[k]; dup || len(r.seen) >= maxRefusalKeys {
		r.suppressed++
		return false
	}
	r.seen[k] = struct{}{}
	return true
}

// endInterval forgets the interval's clients and reports how many
// refusals went to debug level only. gen guards against a timer that fires
// after stop already ended its interval.
func (r *refusalLog) endInterval(gen int) {
	r.mu.Lock()
	if gen != r.generation || r.seen == nil {
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.seen, r.suppressed = nil, 0
	r.generation++
	r.mu.Unlock()
	if n > 0 {
		r.logger().Info("TURN refusals logged at debug level only", zap.Int("count", n),
			zap.Duration("interval", r.interval))
	}
}

// stop ends the running interval now, so its count is not lost when the
// server goes away.
func (r *refusalLog) stop() {
	r.mu.Lock()
	gen := r.generation
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
	r.endInterval(gen)
}

// addrIP is the IP of a UDP or TCP address; the zero Addr for others.
func addrIP(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}
