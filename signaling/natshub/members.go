package natshub

import "github.com/caddy-webrtc/caddy-webrtc/signaling/wire"

// Members implements hub.Hub: the members this node has told its
// peers of, which is what a resumed peer's welcome lists.
func (h *Hub) Members(name, id string) []wire.PeerInfo {
	v := h.view(h.roomKey(name))
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]wire.PeerInfo, 0, len(v.members))
	for _, m := range v.members {
		if m.ID != id {
			out = append(out, m.info())
		}
	}
	return out
}
