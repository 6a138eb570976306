package signaling

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddyserver/caddy/v2"
)

// Admin serves the rooms and peers of every live hub on Caddy's admin
// endpoint, GET /webrtc/signaling, for monitoring:
//
//	{"hubs":{"default":{"backend":"memory","local_peers":5,"rooms":2,"peers":5}}}
//
// Module ID admin.api.webrtc_signaling.
type Admin struct{}

var _ caddy.AdminRouter = Admin{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.webrtc_signaling",
		New: func() caddy.Module { return new(Admin) },
	}
}

// Routes implements caddy.AdminRouter.
func (Admin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/webrtc/signaling", Handler: caddy.AdminHandlerFunc(serveStats)}}
}

func serveStats(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed: use GET", r.Method)}
	}
	out := struct {
		Hubs map[string]hub.HubStats `json:"hubs"`
	}{Hubs: LiveHubs()}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}
