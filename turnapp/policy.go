package turnapp

import (
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// policy is the part of the config a reload may change without restarting
// the listeners: the running server reads it through an atomic pointer.
type policy struct {
	secrets     []string
	peers       peerPolicy
	maxPerUser  int
	maxLifetime time.Duration
	logger      *zap.Logger
}

// allocations tracks live allocations for the per-user quota, the
// lifetime cap and the idle timeout of stream connections. pion reports
// them through its EventHandler. The quota counts turncreds.UserOf, the
// user that logs name too.
type allocations struct {
	mu      sync.Mutex
	perUser map[string]int
	started map[string]time.Time // by client transport address
}

func newAllocations() *allocations {
	return &allocations{perUser: make(map[string]int), started: make(map[string]time.Time)}
}

func addrKey(a net.Addr) string { return a.Network() + "/" + a.String() }

func (a *allocations) created(src net.Addr, username string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.perUser[turncreds.UserOf(username)]++
	a.started[addrKey(src)] = time.Now()
}

func (a *allocations) deleted(src net.Addr, username string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := turncreds.UserOf(username)
	if a.perUser[u] <= 1 {
		delete(a.perUser, u)
	} else {
		a.perUser[u]--
	}
	delete(a.started, addrKey(src))
}

// underQuota reports whether username may open one more allocation.
func (a *allocations) underQuota(username string, max int) bool {
	if max <= 0 {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.perUser[turncreds.UserOf(username)] < max
}

// overAge reports whether the allocation of src is older than max.
func (a *allocations) overAge(src net.Addr, max time.Duration) bool {
	if max <= 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.started[addrKey(src)]
	return ok && time.Since(t) > max
}

// count is the number of live allocations.
func (a *allocations) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.started)
}

// has reports whether the client at the transport address with addrKey
// key holds an allocation.
func (a *allocations) has(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.started[key]
	return ok
}
