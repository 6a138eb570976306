package signaling

import (
	"fmt"
)

// Defaults of the limits: far above what a six-person call needs (a join
// with ICE gathering sends a few dozen frames in a burst, then a trickle),
// low enough that one client cannot monopolise the server.
const (
	DefaultFramesPerSecond  = 20
	DefaultBurst            = 100
	DefaultConnectionsPerIP = 50
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
