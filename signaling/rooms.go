package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/internal/caddyfileopt"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/hub"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/session"
	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// RoomsAPI is the rooms API for the site's backend: it lists a hub's rooms
// and members, closes rooms, removes peers and sends them messages. Module
// ID http.handlers.webrtc_rooms. It acts on the hub of the name it is
// given as webrtc_signaling handlers of a loaded config opened it; it
// never opens one.
//
// Paths, from the first path segment named rooms (what comes before it is
// the site's route, e.g. /rtc-api/rooms/standup); room names and peer ids
// are path-escaped:
//
//	GET    .../rooms                      {"rooms":[{"room","peers","started_at"}]}
//	GET    .../rooms/{room}               {"room","peers":[{"id","user","name","joined_at","transport","away","server"}]}
//	DELETE .../rooms/{room}               every member gets room_closed (4404)
//	DELETE .../rooms/{room}/peers/{id}    the peer gets removed (4406)
//	POST   .../rooms/{room}/messages      {"data":<JSON>,"to":[ids]} → server-message
type RoomsAPI struct {
	// Hub names the hub acted on, as webrtc_signaling's hub option does.
	// Default "default".
	Hub string `json:"hub,omitempty"`
	// TokenSecrets verify the admin tokens (HS256 JWTs carrying
	// "rooms_admin": true) the API's clients present as a bearer token:
	// the hub's room-token secrets, or others. Placeholders are resolved
	// at load.
	TokenSecrets []string `json:"token_secrets,omitempty"`
	// Auth is "none" for a route the site protects itself (basic_auth,
	// forward_auth): the API then asks for no token. Without it,
	// TokenSecrets are required.
	Auth string `json:"auth,omitempty"`

	tokens *TokenVerifier
	logger *zap.Logger
}

// RoomsAuthNone is the value of RoomsAPI.Auth that turns token checks off.
const RoomsAuthNone = "none"

// maxRoomsMessage bounds the body of a POST .../messages.
const maxRoomsMessage = 64 << 10

var (
	_ hub.Describer = (*session.Session)(nil)
	_ hub.Ender     = (*session.Session)(nil)

	_ caddy.Provisioner           = (*RoomsAPI)(nil)
	_ caddy.Validator             = (*RoomsAPI)(nil)
	_ caddyhttp.MiddlewareHandler = (*RoomsAPI)(nil)
	_ caddyfile.Unmarshaler       = (*RoomsAPI)(nil)
)

// CaddyModule returns the Caddy module information.
func (*RoomsAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webrtc_rooms",
		New: func() caddy.Module { return new(RoomsAPI) },
	}
}

// ParseRoomsCaddyfile builds a RoomsAPI from the webrtc_rooms directive.
func ParseRoomsCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var a RoomsAPI
	err := a.UnmarshalCaddyfile(h.Dispenser)
	return &a, err
}

// UnmarshalCaddyfile sets up the API from Caddyfile tokens:
//
//	webrtc_rooms {
//	    hub          <name>
//	    token_secret <secret...>
//	    auth         none
//	}
func (a *RoomsAPI) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if err := caddyfileopt.NoArgs(d); err != nil {
		return err
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "hub":
			a.Hub, err = caddyfileopt.String(d)
		case "token_secret":
			var v []string
			v, err = caddyfileopt.Strings(d)
			a.TokenSecrets = append(a.TokenSecrets, v...)
		case "auth":
			a.Auth, err = caddyfileopt.String(d)
		default:
			err = d.Errf("unknown webrtc_rooms option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Provision sets defaults and resolves the secrets.
func (a *RoomsAPI) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if a.Hub == "" {
		a.Hub = DefaultHub
	}
	if len(a.TokenSecrets) > 0 {
		var err error
		a.tokens, err = newSecretVerifier(a.TokenSecrets)
		return err
	}
	return nil
}

// Validate insists on one way in: admin tokens, or auth none.
func (a *RoomsAPI) Validate() error {
	switch a.Auth {
	case "":
		if len(a.TokenSecrets) == 0 {
			return errors.New("webrtc_rooms needs token_secret (admin tokens signed with the hub's room-token secret) or, for a route the site protects itself, auth none")
		}
	case RoomsAuthNone:
		if len(a.TokenSecrets) > 0 {
			return errors.New("webrtc_rooms: auth none and token_secret contradict each other; drop one")
		}
	default:
		return fmt.Errorf("webrtc_rooms: unknown auth %q (the only value is none)", a.Auth)
	}
	return nil
}

// ServeHTTP answers the API's requests; it never calls next.
func (a *RoomsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if err := a.authorize(w, r); err != nil {
		return err
	}
	path, err := roomsPath(r.URL)
	if err != nil {
		return err
	}
	ph, ok := findHub(a.Hub)
	if !ok {
		return caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("hub %q is not open: no webrtc_signaling handler of a loaded config uses it", a.Hub))
	}
	rooms, ok := ph.Hub.(hub.Rooms)
	if !ok {
		return caddyhttp.Error(http.StatusNotImplemented, fmt.Errorf("hub %q's backend %s does not support the rooms API yet", a.Hub, ph.backend))
	}
	switch {
	case len(path) == 0:
		if err := allow(r, http.MethodGet); err != nil {
			return err
		}
		return a.listRooms(w, rooms)
	case len(path) == 1 && r.Method == http.MethodDelete:
		return a.closeRoom(w, rooms, path[0])
	case len(path) == 1:
		if err := allow(r, http.MethodGet, http.MethodDelete); err != nil {
			return err
		}
		return a.listMembers(w, rooms, path[0])
	case len(path) == 3 && path[1] == "peers":
		if err := allow(r, http.MethodDelete); err != nil {
			return err
		}
		return a.removePeer(w, rooms, path[0], path[2])
	case len(path) == 2 && path[1] == "messages":
		if err := allow(r, http.MethodPost); err != nil {
			return err
		}
		return a.message(w, r, rooms, path[0])
	}
	return caddyhttp.Error(http.StatusNotFound, errors.New("no such rooms API endpoint"))
}

// authorize checks the request's admin token, unless auth is none.
func (a *RoomsAPI) authorize(w http.ResponseWriter, r *http.Request) error {
	if a.Auth == RoomsAuthNone {
		return nil
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		token = ""
	}
	claims, err := a.tokens.VerifyAdmin(strings.TrimSpace(token), time.Now())
	if errors.Is(err, ErrTokenNotAdmin) {
		return caddyhttp.Error(http.StatusForbidden, err)
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="webrtc_rooms"`)
		return caddyhttp.Error(http.StatusUnauthorized, fmt.Errorf("admin token refused: %w", err))
	}
	a.logger.Debug("rooms API request", zap.String("method", r.Method), zap.String("admin", claims.Subject))
	return nil
}

// roomsPath returns the unescaped segments after the first one named
// rooms.
func roomsPath(u *url.URL) ([]string, error) {
	segs := strings.Split(u.EscapedPath(), "/")
	for i, s := range segs {
		if s != "rooms" {
			continue
		}
		rest := segs[i+1:]
		if len(rest) > 0 && rest[len(rest)-1] == "" {
			rest = rest[:len(rest)-1] // a trailing slash
		}
		out := make([]string, len(rest))
		for j, e := range rest {
			v, err := url.PathUnescape(e)
			if err != nil || v == "" {
				return nil, caddyhttp.Error(http.StatusBadRequest, errors.New("malformed rooms API path"))
			}
			out[j] = v
		}
		return out, nil
	}
	return nil, caddyhttp.Error(http.StatusNotFound, errors.New("the rooms API's paths have a segment named rooms"))
}

// allow refuses a method the endpoint does not answer.
func allow(r *http.Request, methods ...string) error {
	for _, m := range methods {
		if r.Method == m {
			return nil
		}
	}
	return caddyhttp.Error(http.StatusMethodNotAllowed, fmt.Errorf("use %s", strings.Join(methods, " or ")))
}

// roomJSON is a room in GET .../rooms.
type roomJSON struct {
	Room      string    `json:"room"`
	Peers     int       `json:"peers"`
	StartedAt time.Time `json:"started_at"`
}

// memberJSON is a member in GET .../rooms/{room}.
type memberJSON struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Name      string    `json:"name"`
	JoinedAt  time.Time `json:"joined_at"`
	Transport string    `json:"transport"`
	Away      bool      `json:"away"`
	Server    string    `json:"server"`
}

func (a *RoomsAPI) listRooms(w http.ResponseWriter, rooms hub.Rooms) error {
	list, err := rooms.ListRooms()
	if err != nil {
		return unavailable(err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Room < list[j].Room })
	out := make([]roomJSON, 0, len(list))
	for _, r := range list {
		out = append(out, roomJSON{Room: r.Room, Peers: r.Peers, StartedAt: r.StartedAt.UTC()})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"rooms": out})
}

func (a *RoomsAPI) listMembers(w http.ResponseWriter, rooms hub.Rooms, room string) error {
	ms, err := members(rooms, room)
	if err != nil {
		return err
	}
	out := make([]memberJSON, 0, len(ms))
	for _, m := range ms {
		j := memberJSON{ID: m.ID, User: m.User, Name: m.Name, JoinedAt: m.JoinedAt.UTC(), Server: m.Node}
		if d, ok := m.Peer.(hub.Describer); ok {
			j.Transport, j.Away = d.TransportKind(), d.Away()
		}
		out = append(out, j)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"room": room, "peers": out})
}

// members lists room's members; an empty or unknown room is a 404.
func members(rooms hub.Rooms, room string) ([]hub.MemberInfo, error) {
	ms, err := rooms.RoomMembers(room)
	if err != nil {
		return nil, unavailable(err)
	}
	if len(ms) == 0 {
		return nil, caddyhttp.Error(http.StatusNotFound, fmt.Errorf("room %s has no members", wire.Quote(room)))
	}
	return ms, nil
}

func (a *RoomsAPI) closeRoom(w http.ResponseWriter, rooms hub.Rooms, room string) error {
	ms, err := members(rooms, room)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(ms))
	peers := make([]hub.Peer, 0, len(ms))
	for _, m := range ms {
		ids, peers = append(ids, m.ID), append(peers, m.Peer)
	}
	oust(peers, wire.CodeRoomClosed, "the room was closed", wire.CloseRoomClosed)
	a.logger.Info("room closed through the rooms API", zap.String("hub", a.Hub), zap.String("room", room), zap.Int("peers", len(ids)))
	return writeJSON(w, http.StatusOK, map[string]any{"room": room, "closed": ids})
}

func (a *RoomsAPI) removePeer(w http.ResponseWriter, rooms hub.Rooms, room, id string) error {
	ms, err := rooms.RoomMembers(room)
	if err != nil {
		return unavailable(err)
	}
	for _, m := range ms {
		if m.ID == id {
			oust([]hub.Peer{m.Peer}, wire.CodeRemoved, "removed from the room", wire.CloseRemoved)
			a.logger.Info("peer removed through the rooms API", zap.String("hub", a.Hub), zap.String("room", room), zap.String("peer", id))
			return writeJSON(w, http.StatusOK, map[string]any{"room": room, "removed": id})
		}
	}
	return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("no peer %s in room %s", wire.Quote(id), wire.Quote(room)))
}

// oust ends members with a fatal error (hub.Ender: a session here, or a
// clustered hub's stand-in for one on another server), and takes them out
// of their room at once: they cannot resume, and the API's next answer no longer lists
// them. All are ended before any leaves, so that none hears of the others
// leaving after its error.
func oust(peers []hub.Peer, code, msg string, closeCode int) {
	var ended []hub.Ender
	for _, p := range peers {
		s, ok := p.(hub.Ender)
		if !ok {
			p.Close(closeCode, code)
			continue
		}
		s.Fatal(code, msg, closeCode)
		ended = append(ended, s)
	}
	for _, s := range ended {
		s.Leave()
	}
}

// unavailable is the answer when the hub cannot read its rooms (a
// clustered hub without its backend).
func unavailable(err error) error {
	return caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("the hub's rooms cannot be read now: %w", err))
}

// messageBody is the body of POST .../messages.
type messageBody struct {
	Data json.RawMessage `json:"data"`
	To   []string        `json:"to,omitempty"`
}

func (a *RoomsAPI) message(w http.ResponseWriter, r *http.Request, rooms hub.Rooms, room string) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRoomsMessage+1))
	switch {
	case err != nil:
		return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("reading the body: %w", err))
	case len(body) > maxRoomsMessage:
		return caddyhttp.Error(http.StatusRequestEntityTooLarge, fmt.Errorf("the body is over %d bytes", maxRoomsMessage))
	}
	var m messageBody
	if err := json.Unmarshal(body, &m); err != nil {
		return caddyhttp.Error(http.StatusBadRequest, errors.New(`the body is not a JSON object {"data":<JSON>,"to":[ids]}`))
	}
	if len(m.Data) == 0 {
		return caddyhttp.Error(http.StatusBadRequest, errors.New(`the body has no "data"`))
	}
	ms, err := members(rooms, room)
	if err != nil {
		return err
	}
	targets := ms
	if m.To != nil {
		byID := make(map[string]hub.MemberInfo, len(ms))
		for _, mi := range ms {
			byID[mi.ID] = mi
		}
		targets = make([]hub.MemberInfo, 0, len(m.To))
		for _, id := range m.To {
			mi, ok := byID[id]
			if !ok {
				return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("no peer %s in room %s", wire.Quote(id), wire.Quote(room)))
			}
			targets = append(targets, mi)
		}
	}
	frame := wire.ServerMessage(m.Data)
	sent := make([]string, 0, len(targets))
	for _, t := range targets {
		if t.Peer.Send(frame) {
			sent = append(sent, t.ID)
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"room": room, "sent": sent})
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// findHub returns the live hub named name, as the pool holds it.
func findHub(name string) (pooledHub, bool) {
	var found pooledHub
	var ok bool
	rangeHubs(func(n string, ph pooledHub) {
		if n == name {
			found, ok = ph, true
		}
	})
	return found, ok
}
