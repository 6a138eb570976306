package hub_test

import (
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub/hubtest"
)

func TestMemoryHubConformance(t *testing.T) {
	hubtest.Run(t, func(*testing.T) (hub.Hub, hub.Hub) {
		h := hub.NewMemoryHub()
		return h, h
	})
}
