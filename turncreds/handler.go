package turncreds

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyfileopt"
)

// Handler answers requests with freshly issued TURN credentials. It is a
// terminal handler: it never calls the next handler.
//
// The default response is {"iceServers":[...],"ttl":s,"expires":unix}, ready
// for new RTCPeerConnection({iceServers}). With ?service=turn it answers in
// the TURN REST API draft shape {"username","password","ttl","uris"}.
//
// Caddyfile:
//
//	turn_credentials [<matcher>] {
//		secret <secret...>
//		ttl    <duration>
//		user   <placeholder expression>
//		uris   <turn: URI...>
//		stun   <stun: URI...>
//	}
type Handler struct {
	Config

	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.turn_credentials",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets up the handler.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	return h.Config.Provision(ctx)
}

// Validate ensures the handler can issue credentials.
func (h *Handler) Validate() error {
	return h.Config.Validate()
}

// iceResponse is the default response body.
type iceResponse struct {
	ICEServers []ICEServer `json:"iceServers"`
	TTL        int64       `json:"ttl"`
	Expires    int64       `json:"expires"`
}

// restResponse is the TURN REST API draft (draft-uberti-behave-turn-rest)
// response body.
type restResponse struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	TTL      int64    `json:"ttl"`
	URIs     []string `json:"uris"`
}

// allowedMethods is the Allow header of a 405 answer.
const allowedMethods = "GET, HEAD, POST"

// Errors the handler answers with. They are returned as caddyhttp errors,
// not written, so that a site's handle_errors shapes the answer as it does
// for every other handler; without one, Caddy sends the bare status.
var (
	errMethod  = errors.New("method not allowed: use GET, HEAD or POST")
	errService = errors.New("unsupported service: only service=turn is known")
	errNoTURN  = errors.New("no TURN server available: no TURN URI or no secret")
)

// ServeHTTP implements caddyhttp.MiddlewareHandler. Refused requests
// return a caddyhttp.HandlerError with the status to answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		// Set before returning: the error answer keeps the headers.
		w.Header().Set("Allow", allowedMethods)
		return caddyhttp.Error(http.StatusMethodNotAllowed, errMethod)
	}

	// The REST draft requires service=turn; accept only that so typos show.
	service := r.URL.Query().Get("service")
	if service != "" && service != "turn" {
		return caddyhttp.Error(http.StatusBadRequest, errService)
	}

	creds := h.Issue(r, time.Now())
	ttl := int64(creds.TTL / time.Second)

	var body any
	if service == "turn" {
		if creds.Password == "" {
			// No TURN URI or no secret (a TURN app that currently has none).
			return caddyhttp.Error(http.StatusServiceUnavailable, errNoTURN)
		}
		body = restResponse{Username: creds.Username, Password: creds.Password, TTL: ttl, URIs: creds.TURNURIs}
	} else {
		servers := creds.ICEServers
		if servers == nil {
			servers = []ICEServer{} // "[]", never null, for the browser API
		}
		body = iceResponse{ICEServers: servers, TTL: ttl, Expires: creds.Expires.Unix()}
	}
	out, err := json.Marshal(body)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}

	if creds.Username != "" && h.logger != nil {
		// Never the password or the secret; the user part identifies enough.
		_, user, _ := ParseUsername(creds.Username)
		h.logger.Debug("issued TURN credential",
			zap.String("user", user),
			zap.Time("expires", creds.Expires))
	}

	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	// Credentials are per request and secret-bearing: no cache may keep them.
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, _ = w.Write(out) // a gone client is not a handler error
	return nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. It takes no
// arguments, only the block described on Handler.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if err := caddyfileopt.NoArgs(d); err != nil {
		return err
	}
	return h.ParseBlock(d)
}

// ParseCaddyfile sets up the handler for the turn_credentials directive; pass
// it to httpcaddyfile.RegisterHandlerDirective.
func ParseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	hd := new(Handler)
	err := hd.UnmarshalCaddyfile(h.Dispenser)
	return hd, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
