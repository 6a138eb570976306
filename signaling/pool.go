package signaling

import "github.com/caddyserver/caddy/v2"

// hubs keeps hubs across config reloads: a reloaded handler with the same
// hub name gets the same rooms, so peers stay connected. A hub is shut down
// (peers get 1001) when no loaded config uses its name any more.
var hubs = caddy.NewUsagePool()

// pooledHub lets the usage pool shut a hub down.
type pooledHub struct{ *MemoryHub }

// Destruct implements caddy.Destructor.
func (h pooledHub) Destruct() error {
	h.Shutdown()
	return nil
}

func hubKey(name string) string { return "webrtc_signaling.hub." + name }

// loadHub returns the hub with the given name, creating it on first use.
// Every call must be paired with releaseHub.
func loadHub(name string) (*MemoryHub, error) {
	v, _, err := hubs.LoadOrNew(hubKey(name), func() (caddy.Destructor, error) {
		return pooledHub{NewMemoryHub()}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(pooledHub).MemoryHub, nil
}

func releaseHub(name string) error {
	_, err := hubs.Delete(hubKey(name))
	return err
}

// HubStats reports the rooms and peers of every live hub, by hub name. It
// exists for monitoring and for tests that check nothing is left behind.
func HubStats() map[string][2]int {
	out := make(map[string][2]int)
	hubs.Range(func(key, value any) bool {
		rooms, peers := value.(pooledHub).Stats()
		out[key.(string)[len(hubKey("")):]] = [2]int{rooms, peers}
		return true
	})
	return out
}
