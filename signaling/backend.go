package signaling

import (
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Hubs are guest modules, the way reverse_proxy's transports are: a
// handler's backend option names a module in this namespace, and the
// module opens the hub its rooms live in. A new backend is a new package
// that registers a module here; the WebSocket code does not change.
const backendNamespace = "http.handlers.webrtc_signaling.hubs"

// HubBackend opens hubs. The handler keeps the hub it opens in a pool
// under its hub name, so it outlives config reloads while a handler with
// that name and backend stays loaded.
type HubBackend interface {
	// OpenHub returns a new hub for the given hub name. It must not bind
	// sockets or dial anything that outlives the hub.
	OpenHub(name string) (hub.Hub, error)
}

// memoryBackendName is the default backend's module name.
const memoryBackendName = hub.MemoryName

// MemoryBackend keeps rooms in this process (module
// http.handlers.webrtc_signaling.hubs.memory, the default).
type MemoryBackend struct{}

var (
	_ HubBackend            = MemoryBackend{}
	_ caddyfile.Unmarshaler = (*MemoryBackend)(nil)
)

// CaddyModule returns the Caddy module information.
func (MemoryBackend) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  backendNamespace + "." + memoryBackendName,
		New: func() caddy.Module { return new(MemoryBackend) },
	}
}

// OpenHub implements HubBackend.
func (MemoryBackend) OpenHub(string) (hub.Hub, error) { return hub.NewMemoryHub(), nil }

// UnmarshalCaddyfile accepts `backend memory` with no options.
func (*MemoryBackend) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(d.Nesting()) {
		return d.Errf("backend memory has no options, got %q", d.Val())
	}
	return nil
}
