// Package loadtest is the engine of caddy webrtc-loadtest: it opens many
// signaling peers against a server, grouped in rooms, relays timestamped
// signals between room-mates and reports what arrived, how fast, and what
// the server process cost.
package loadtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Defaults of the Config fields and flags.
const (
	DefaultRoomSize = 5
	DefaultRate     = 2
	DefaultSize     = 600
	DefaultDuration = 30 * time.Second
	DefaultRamp     = 500 // connections per second
	DefaultDials    = 64  // concurrent dials
	// DefaultChurnHold is how long a churning peer stays in its room.
	DefaultChurnHold = 5 * time.Second
	DefaultWindow    = 16 // signals in flight per peer with FlatOut
	// DefaultDrain is how long signals in flight may still arrive after
	// the senders stop; what has not arrived by then counts as lost.
	DefaultDrain = 5 * time.Second
	// DefaultProgressInterval is how often a progress line is printed.
	DefaultProgressInterval = time.Second
	// tokenTTLMargin keeps minted room tokens valid past the run's end.
	tokenTTLMargin = 10 * time.Minute
)

// Config describes one load test.
type Config struct {
	// URL is the signaling endpoint: wss://host/rtc/ws for the caddy
	// protocol, ws://host:port/peerjs for PeerJS.
	URL string
	// Protocol is ProtocolCaddy (default) or ProtocolPeerJS.
	Protocol string
	// Peers is how many peers to connect.
	Peers int
	// RoomSize peers share a room (the last room may be smaller).
	RoomSize int
	// Rate is the signals per second each peer sends; 0 makes the peers
	// idle (they connect and hold).
	Rate float64
	// FlatOut makes each peer send as fast as the relay delivers, keeping
	// Window signals in flight; Rate is then ignored.
	FlatOut bool
	// Window is the in-flight bound of FlatOut (default DefaultWindow).
	Window int
	// Size is the approximate payload (data) size of a signal in bytes
	// (default DefaultSize; at least the ~60 bytes of sequence number and
	// timestamps).
	Size int
	// Duration is how long signals are sent once every peer has dialed.
	Duration time.Duration
	// Drain is how long Run waits for signals in flight after Duration
	// (default DefaultDrain); later ones count as lost.
	Drain time.Duration
	// RoomPrefix starts every room name (default: random), so runs never
	// share rooms.
	RoomPrefix string
	// TokenSecret, if set, mints a room token for every peer.
	TokenSecret []byte
	// Insecure skips TLS certificate verification (Caddy's internal CA).
	Insecure bool
	// Ramp is the connection rate (per second) and Dials the concurrent
	// dials while connecting.
	Ramp  float64
	Dials int
	// ChurnPeers more peers, in rooms of their own, come and go while the
	// signaling peers send: each joins, stays about ChurnHold (default
	// DefaultChurnHold), leaves and joins again (churn.go).
	ChurnPeers int
	ChurnHold  time.Duration
	// PID, if set, is a server process on this host whose RSS and CPU
	// time are reported (Linux /proc).
	PID int
	// ProgressInterval is how often Run prints a progress line.
	ProgressInterval time.Duration
}

// withDefaults fills in unset fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		return c, errors.New("no URL")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return c, fmt.Errorf("URL: %v", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return c, fmt.Errorf("URL %q: scheme must be ws or wss", c.URL)
	}
	if c.Peers < 1 {
		return c, errors.New("need at least one peer")
	}
	if c.Rate < 0 || c.Size < 0 || c.Duration < 0 || c.Ramp < 0 || c.Window < 0 || c.ChurnPeers < 0 || c.ChurnHold < 0 {
		return c, errors.New("rate, size, duration, ramp, window, churn peers and churn hold must not be negative")
	}
	c.ChurnHold = orDefault(c.ChurnHold, DefaultChurnHold)
	c.RoomSize = orDefault(c.RoomSize, DefaultRoomSize)
	c.Window = orDefault(c.Window, DefaultWindow)
	c.Size = orDefault(c.Size, DefaultSize)
	c.Drain = orDefault(c.Drain, DefaultDrain)
	c.Dials = orDefault(c.Dials, DefaultDials)
	c.Ramp = orDefault(c.Ramp, DefaultRamp)
	c.ProgressInterval = orDefault(c.ProgressInterval, DefaultProgressInterval)
	if c.RoomPrefix == "" {
		c.RoomPrefix = randomPrefix()
	}
	return c, nil
}

func orDefault[T int | float64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// randomPrefix names the rooms of one run.
func randomPrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "lt-" + hex.EncodeToString(b)
}
