package session

import (
	"strings"
	"sync"
	"sync/atomic"
)

// Registry finds one hub's live sessions in this process by peer
// id (ids are 128 random bits), for resumes and for frames posted by the
// SSE transport. Keyed by the id the session already holds, it allocates
// no key per peer.
type Registry struct {
	hub string // the hub's name, which its tokens are bound to
	mu  sync.Mutex
	m   map[string]*Session
}

// liveSessions counts the sessions of every hub's registry. It is the
// process's, not a hub's: a hub shut down leaves the pool at once, while
// its sessions are still on their way out, and LiveSessions counts them
// until they are gone.
var liveSessions atomic.Int64

// NewRegistry makes the registry of the sessions of the hub named hub.
func NewRegistry(hub string) *Registry {
	return &Registry{hub: hub, m: make(map[string]*Session)}
}

func (r *Registry) Add(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, taken := r.m[s.id]; !taken {
		liveSessions.Add(1)
	}
	r.m[s.id] = s
}

func (r *Registry) Remove(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[s.id] == s {
		delete(r.m, s.id)
		liveSessions.Add(-1)
	}
}

// Lookup returns the session a token names, if the token is genuine and,
// when room is not empty, was issued for that room; and the token's
// generation.
func (r *Registry) Lookup(room, token string) (*Session, uint64) {
	id, _, found := strings.Cut(token, ".")
	if !found {
		return nil, 0
	}
	r.mu.Lock()
	s := r.m[id]
	r.mu.Unlock()
	if s == nil || (room != "" && s.room != room) {
		return nil, 0
	}
	if _, gen, ok := ParseToken(token, r.hub, s.room); ok {
		return s, gen
	}
	return nil, 0
}

// Current returns the live session whose Current token this is: the token
// of a generation a resume moved past names nothing.
func (r *Registry) Current(token string) *Session {
	s, gen := r.Lookup("", token)
	if s == nil || gen != s.CurrentGen() {
		return nil
	}
	return s
}

// LiveSessions is the number of sessions this process holds, present or
// away, over all hubs.
func LiveSessions() int { return int(liveSessions.Load()) }

// Away counts the sessions waiting for a resume.
func (r *Registry) Away() int {
	r.mu.Lock()
	all := make([]*Session, 0, len(r.m))
	for _, s := range r.m {
		all = append(all, s)
	}
	r.mu.Unlock()
	n := 0
	for _, s := range all {
		s.mu.Lock()
		if s.tr == nil && !s.IsEnded() {
			n++
		}
		s.mu.Unlock()
	}
	return n
}
