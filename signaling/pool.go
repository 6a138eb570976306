package signaling

import (
	"context"
	"fmt"
	"sync"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddyserver/caddy/v2"
)

// hubs keeps hubs across config reloads: a reloaded handler with the same
// hub name gets the same rooms, so peers stay connected. A hub is shut down
// (peers get 1001) when no loaded config uses its name any more.
var hubs = caddy.NewUsagePool()

// pooledHub lets the usage pool shut a hub down, and remembers which
// backend opened it and what this process keeps for it besides its rooms.
type pooledHub struct {
	hub.Hub
	backend string
	state   *hubState
}

// hubState is what this process keeps per hub besides its rooms: its
// clients' connections and away sessions per address, and its sessions by
// id. It lives in the hub's pool entry, so a reload, which hands the new
// handlers the same entry, keeps the counts and the resumable sessions.
// Handlers and sessions hold it directly, so connections still open when a
// hub is shut down give their places back to the state they took them in.
type hubState struct {
	// conns counts connections and event streams; away counts sessions
	// away (their connection lost, resumable), which hold a room seat each
	// and are capped at the same number, so that an address cannot pile up
	// seats by dropping its connections. Both are per client IP.
	conns, away session.AddrSlots
	sessions    *session.Registry
	// hooks are the webhooks its sessions and sweeps report to.
	hooks hookSet
}

func newHubState(name string) *hubState {
	return &hubState{sessions: session.NewRegistry(name), hooks: hookSet{hub: name}}
}

// Destruct implements caddy.Destructor.
func (h pooledHub) Destruct() error {
	h.Shutdown()
	return nil
}

func hubKey(name string) string { return "webrtc_signaling.hub." + name }

// loadHub returns the hub with the given name and its state, opening it
// with backend on first use. Every successful call must be paired with
// releaseHub.
func loadHub(ctx caddy.Context, name, backendName string, backend HubBackend) (hub.Hub, *hubState, error) {
	if err := claimBackend(ctx, name, backendName); err != nil {
		return nil, nil, err
	}
	v, _, err := hubs.LoadOrNew(hubKey(name), func() (caddy.Destructor, error) {
		h, err := backend.OpenHub(name)
		if err != nil {
			return nil, err
		}
		return pooledHub{Hub: h, backend: backendName, state: newHubState(name)}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	ph := v.(pooledHub)
	if ph.backend != backendName {
		_, _ = hubs.Delete(hubKey(name))
		return nil, nil, fmt.Errorf("hub %q is open with backend %s, so it cannot use backend %s until no loaded config uses it; give the hub another name to switch backends", name, ph.backend, backendName)
	}
	return ph.Hub, ph.state, nil
}

func releaseHub(name string) error {
	_, err := hubs.Delete(hubKey(name))
	return err
}

// configBackends remembers, per config being loaded, which backend each
// hub name was given, so two handlers of one config that name the same hub
// with different backends are a config error. A config is identified by
// its context, which Caddy makes once per config.
var configBackends = struct {
	sync.Mutex
	m map[context.Context]map[string]string
}{m: make(map[context.Context]map[string]string)}

func claimBackend(ctx caddy.Context, hub, backend string) error {
	configBackends.Lock()
	defer configBackends.Unlock()
	byHub := configBackends.m[ctx.Context]
	if byHub == nil {
		byHub = make(map[string]string)
		configBackends.m[ctx.Context] = byHub
		key := ctx.Context
		ctx.OnCancel(func() {
			configBackends.Lock()
			defer configBackends.Unlock()
			delete(configBackends.m, key)
		})
	}
	if other, ok := byHub[hub]; ok && other != backend {
		return fmt.Errorf("hub %q is given two backends, %s and %s: handlers that share a hub must use the same backend", hub, other, backend)
	}
	byHub[hub] = backend
	return nil
}

// LiveHubs reports the counts of every live hub, by hub name, with the
// name of the backend module that opened it. It exists for monitoring and
// for tests that check nothing is left behind.
func LiveHubs() map[string]hub.HubStats {
	out := make(map[string]hub.HubStats)
	rangeHubs(func(name string, ph pooledHub) {
		st := ph.Stats()
		st.Backend = ph.backend
		out[name] = st
	})
	return out
}

// rangeHubs calls f with every live hub and its name.
func rangeHubs(f func(name string, ph pooledHub)) {
	hubs.Range(func(key, value any) bool {
		f(key.(string)[len(hubKey("")):], value.(pooledHub))
		return true
	})
}
