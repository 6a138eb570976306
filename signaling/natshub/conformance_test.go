package natshub

import (
	"testing"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub/hubtest"
)

// Two hub instances on one NATS are two servers sharing rooms: every case
// of the suite crosses between them.
func TestConformance(t *testing.T) {
	srv := startNATS(t)
	hubtest.Run(t, func(t *testing.T) (hub.Hub, hub.Hub) {
		hs := newHubs(t, srv.URL(), 2)
		return hs[0], hs[1]
	})
}
