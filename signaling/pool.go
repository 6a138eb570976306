package signaling

import (
	"context"
	"fmt"
	"sync"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddyserver/caddy/v2"
)

// hubs keeps hubs across config reloads: a reloaded handler with the same
// hub name gets the same rooms, so peers stay connected. A hub is shut down
// (peers get 1001) when no loaded config uses its name any more.
var hubs = caddy.NewUsagePool()

// pooledHub lets the usage pool shut a hub down, and remembers which
// backend opened it.
type pooledHub struct {
	hub.Hub
	backend string
}

// Destruct implements caddy.Destructor.
func (h pooledHub) Destruct() error {
	h.Shutdown()
	return nil
}

func hubKey(name string) string { return "webrtc_signaling.hub." + name }

// loadHub returns the hub with the given name, opening it with backend on
// first use. Every successful call must be paired with releaseHub.
func loadHub(ctx caddy.Context, name, backendName string, backend HubBackend) (hub.Hub, error) {
	if err := claimBackend(ctx, name, backendName); err != nil {
		return nil, err
	}
	v, _, err := hubs.LoadOrNew(hubKey(name), func() (caddy.Destructor, error) {
		h, err := backend.OpenHub(name)
		if err != nil {
			return nil, err
		}
		return pooledHub{Hub: h, backend: backendName}, nil
	})
	if err != nil {
		return nil, err
	}
	ph := v.(pooledHub)
	if ph.backend != backendName {
		_, _ = hubs.Delete(hubKey(name))
		return nil, fmt.Errorf("hub %q is open with backend %s, so it cannot use backend %s until no loaded config uses it; give the hub another name to switch backends", name, ph.backend, backendName)
	}
	return ph.Hub, nil
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
	hubs.Range(func(key, value any) bool {
		ph := value.(pooledHub)
		st := ph.Stats()
		st.Backend = ph.backend
		out[key.(string)[len(hubKey("")):]] = st
		return true
	})
	return out
}
