package signaling_test

import (
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/signaling"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hubtest"
)

func TestMemoryHubConformance(t *testing.T) {
	hubtest.Run(t, func(*testing.T) (signaling.Hub, signaling.Hub) {
		h := signaling.NewMemoryHub()
		return h, h
	})
}
