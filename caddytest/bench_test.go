package caddytest

import (
	"testing"
)

// BenchmarkRelayThroughCaddy measures one signal frame relayed from one
// WebSocket peer to another through the Caddy route, end to end on loopback.
func BenchmarkRelayThroughCaddy(b *testing.B) {
	loadCaddyfile(b, signalingSite, false)
	a, _ := join(b, roomURL+"bench")
	c, _ := join(b, roomURL+"bench")
	a.expect("peer-joined")
	msg := map[string]any{"type": "signal", "to": c.id, "data": map[string]string{"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"}}
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			if _, err := c.read(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range b.N {
		if err := a.conn.WriteJSON(msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
