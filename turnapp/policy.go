package turnapp

import (
	"net"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
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

// allocations tracks live allocations for the per-user quota and the
// lifetime cap. pion reports them through its EventHandler.
type allocations struct {
	mu      sync.Mutex
	perUser map[string]int
	started map[string]time.Time // by client transport address
}

func newAllocations() *allocations {
	return &allocations{perUser: make(map[string]int), started: make(map[string]time.Time)}
}

// userOf is the quota identity: the user part of a TURN REST username.
func userOf(username string) string {
	if _, user, ok := strings.Cut(username, ":"); ok {
		return user
	}
	return username
}

func addrKey(a net.Addr) string { return a.Network() + "/" + a.String() }

func (a *allocations) created(src net.Addr, username string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.perUser[userOf(username)]++
	a.started[addrKey(src)] = time.Now()
}

func (a *allocations) deleted(src net.Addr, username string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := userOf(username)
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
	return a.perUser[userOf(username)] < max
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
