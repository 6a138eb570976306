// Package turnapp is the embedded STUN/TURN server: a Caddy app (module id
// "turn") built on pion/turn. It authenticates TURN REST credentials under
// every configured secret, refuses to relay into private and other
// sensitive networks unless told otherwise, serves TURNS with the
// certificates Caddy manages, and keeps live allocations across config
// reloads that keep its listeners. It also supplies secrets and URIs to the
// turn_credentials handler and the signaling welcome (turncreds.Source).
package turnapp

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// DefaultReceiveBuffer is App.ReceiveBuffer's default: under overload (bench/
// turn-compare.sh's overload row), 4 MiB per listener socket took the
// loss from about 25 % to coturn's (BENCHMARKS.md, TURN).
const DefaultReceiveBuffer = 4 << 20

// maxReceiveBuffer bounds App.ReceiveBuffer: the kernel's own limit for
// SO_RCVBUFFORCE is INT_MAX/2.
const maxReceiveBuffer = 1 << 30

// DefaultListen are the STUN/TURN sockets when listen is not set.
var DefaultListen = []string{"udp/:3478", "tcp/:3478"}

// App is the embedded STUN/TURN server, Caddy app "turn".
type App struct {
	// Realm is the TURN realm. Default: the TLS hostname, else the first
	// host of the HTTP app's routes, else "caddy".
	Realm string `json:"realm,omitempty"`
	// Secrets are the TURN REST shared secrets: the first signs credentials
	// (turn_credentials, signaling welcome), all are accepted. Placeholders
	// such as {env.TURN_SECRET} are resolved at load.
	Secrets []string `json:"secrets,omitempty"`
	// Listen are the STUN/TURN sockets, "udp/<host>:<port>" or
	// "tcp/<host>:<port>". Default: udp/:3478 tcp/:3478.
	Listen []string `json:"listen,omitempty"`
	// TLS adds a TURNS listener with the certificate Caddy manages.
	TLS *TLSListener `json:"tls,omitempty"`
	// PublicIP is the relay address told to peers (placeholders allowed).
	// Default: RelayAddress when it is a specific IP, else the host's first
	// global unicast address.
	PublicIP string `json:"public_ip,omitempty"`
	// RelayAddress is the local IP relay sockets bind to. Default 0.0.0.0.
	RelayAddress string `json:"relay_address,omitempty"`
	// RelayPorts limits relay sockets to a port range, e.g. 49152-65535.
	RelayPorts string `json:"relay_ports,omitempty"`
	// DenyPeers are added to DefaultDenyPeers.
	DenyPeers []string `json:"deny_peers,omitempty"`
	// AllowPeers are exceptions to the deny list.
	AllowPeers []string `json:"allow_peers,omitempty"`
	// MaxAllocationsPerUser caps live allocations per credential user
	// (the part after ':' of the username). 0: no cap.
	MaxAllocationsPerUser int `json:"max_allocations_per_user,omitempty"`
	// MaxLifetime stops an allocation from being refreshed once it is this
	// old; it then ends when its current lifetime runs out. 0: no cap.
	MaxLifetime caddy.Duration `json:"max_lifetime,omitempty"`
	// ReceiveBuffer is the receive buffer, in bytes, of each UDP listener
	// socket: what absorbs a burst while the server catches up, beyond
	// which the kernel drops datagrams. 0: DefaultReceiveBuffer. The
	// kernel caps it at net.core.rmem_max unless Caddy has CAP_NET_ADMIN
	// (root); the start-up log says when it did.
	ReceiveBuffer int64 `json:"receive_buffer,omitempty"`

	ctx     caddy.Context
	logger  *zap.Logger
	secrets []string
	binding binding
	policy  *policy
	srv     *server
	sites   *siteListeners // the caddy.listeners.turn wrappers of this config
}

// TLSListener is a TURNS listener.
type TLSListener struct {
	// Address is where to listen, e.g. ":5349".
	Address string `json:"address,omitempty"`
	// Hostname is the certificate's name, managed by Caddy's TLS app.
	// Default: the realm.
	Hostname string `json:"hostname,omitempty"`
}

var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
	_ caddy.Validator   = (*App)(nil)
	_ turncreds.Source  = (*App)(nil)
)

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  turncreds.SourceAppName,
		New: func() caddy.Module { return new(App) },
	}
}

// Provision resolves placeholders and defaults; it binds nothing, since
// `caddy validate` provisions too.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	a.sites = new(siteListeners)
	if err := registerTURNMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	repl := caddy.NewReplacer()
	var err error
	if a.secrets, err = turncreds.ResolveSecrets(repl, a.Secrets); err != nil {
		return err
	}
	if len(a.Listen) == 0 {
		a.Listen = DefaultListen
	}
	b := binding{}
	for _, l := range a.Listen {
		spec, err := parseListen(l, "udp")
		if err != nil {
			return err
		}
		b.Listeners = append(b.Listeners, spec)
	}
	if a.TLS != nil {
		spec, err := parseListen(a.TLS.Address, "tcp")
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		if spec.Network != "tcp" {
			return fmt.Errorf("tls: listen on tcp, not %s", spec.Network)
		}
		spec.Network = "tls"
		b.Listeners = append(b.Listeners, spec)
	}
	if a.Realm == "" {
		a.Realm = a.defaultRealm(ctx)
	}
	if a.TLS != nil && a.TLS.Hostname == "" {
		a.TLS.Hostname = a.Realm
	}
	b.Realm = a.Realm
	if err = a.relayAddresses(&b, repl); err != nil {
		return err
	}
	if a.RelayPorts != "" {
		if b.MinPort, b.MaxPort, err = parsePortRange(a.RelayPorts); err != nil {
			return err
		}
	}
	peers, err := newPeerPolicy(a.DenyPeers, a.AllowPeers)
	if err != nil {
		return err
	}
	b.ReceiveBuffer = a.ReceiveBuffer
	if b.ReceiveBuffer == 0 {
		b.ReceiveBuffer = DefaultReceiveBuffer
	}
	a.binding = b
	a.policy = &policy{
		secrets:     a.secrets,
		peers:       peers,
		maxPerUser:  a.MaxAllocationsPerUser,
		maxLifetime: time.Duration(a.MaxLifetime),
		logger:      a.logger,
	}
	return nil
}

// Validate checks the config.
func (a *App) Validate() error {
	if len(a.secrets) == 0 {
		return errors.New("turn: at least one secret is required")
	}
	if a.MaxAllocationsPerUser < 0 {
		return fmt.Errorf("turn: max_allocations_per_user must not be negative, got %d", a.MaxAllocationsPerUser)
	}
	if a.MaxLifetime < 0 {
		return fmt.Errorf("turn: max_lifetime must not be negative, got %s", time.Duration(a.MaxLifetime))
	}
	if a.ReceiveBuffer < 0 || a.ReceiveBuffer > maxReceiveBuffer {
		return fmt.Errorf("turn: receive_buffer must be between 0 (the default, %d bytes) and %d bytes, got %d", DefaultReceiveBuffer, maxReceiveBuffer, a.ReceiveBuffer)
	}
	return nil
}

// Start binds the listeners, or takes over the running server of a
// previous config with the same listeners, keeping its allocations.
func (a *App) Start() error {
	v, loaded, err := servers.LoadOrNew(a.binding.key(), func() (caddy.Destructor, error) {
		s := &server{}
		s.pol.Store(a.policy)
		if err := s.listen(a.ctx, &a.binding, a.Realm); err != nil {
			return nil, err
		}
		return s, nil
	})
	if err != nil {
		return err
	}
	a.srv = v.(*server)
	a.sites.srv.Store(a.srv)
	if loaded {
		a.srv.setPolicy(a.policy)
	}
	if a.TLS != nil {
		if err := a.startTLS(); err != nil {
			_ = a.Stop()
			return err
		}
	}
	a.logger.Info("TURN server running", zap.Strings("listen", a.listenStrings()), zap.String("realm", a.Realm),
		zap.String("relay_ip", a.binding.PublicIP), zap.Bool("kept_running", loaded))
	return nil
}

// Stop releases the server; the last config using it closes it.
func (a *App) Stop() error {
	if a.srv == nil {
		return nil
	}
	a.sites.srv.Store(nil)
	a.srv = nil
	_, err := servers.Delete(a.binding.key())
	return err
}

// TURNSecrets implements turncreds.Source.
func (a *App) TURNSecrets() []string { return a.secrets }

// ICEURIs implements turncreds.Source: the URIs clients reach the server
// at. Listeners bound to a specific IP are named by it; the others by the
// host the client reached the site at. TURNS uses the TLS hostname, the
// name its certificate is valid for.
func (a *App) ICEURIs(host string) (stun, turn []string) {
	var udp, tcp, tlsSpec *listenerSpec
	for i := range a.binding.Listeners {
		l := &a.binding.Listeners[i]
		switch {
		case l.Network == "tls" && tlsSpec == nil:
			tlsSpec = l
		case (l.Network == "udp" || l.Network == "udp4" || l.Network == "udp6") && udp == nil:
			udp = l
		case (l.Network == "tcp" || l.Network == "tcp4" || l.Network == "tcp6") && tcp == nil:
			tcp = l
		}
	}
	uriHost := func(l *listenerSpec) (string, string) {
		h, port, _ := net.SplitHostPort(l.Address)
		if ip := net.ParseIP(h); ip == nil || ip.IsUnspecified() {
			h = host
		}
		return bracketIPv6(h), port
	}
	if udp != nil {
		h, p := uriHost(udp)
		stun = append(stun, "stun:"+h+":"+p)
		turn = append(turn, "turn:"+h+":"+p+"?transport=udp")
	}
	if tcp != nil {
		h, p := uriHost(tcp)
		if udp == nil {
			stun = append(stun, "stun:"+h+":"+p)
		}
		turn = append(turn, "turn:"+h+":"+p+"?transport=tcp")
	}
	if tlsSpec != nil {
		_, p := uriHost(tlsSpec)
		turn = append(turn, "turns:"+a.TLS.Hostname+":"+p+"?transport=tcp")
	}
	// TURNS on the site's own ports (caddy.listeners.turn), named as the
	// wrapper says, else by the host the client reached the site at: the
	// site's certificate is valid for it on that port.
	for _, l := range a.sites.list() {
		h := l.hostname
		if h == "" {
			h = bracketIPv6(host)
		}
		uri := "turns:" + h + ":" + strconv.Itoa(l.port) + "?transport=tcp"
		if !slices.Contains(turn, uri) {
			turn = append(turn, uri)
		}
	}
	return stun, turn
}

// bracketIPv6 puts an IPv6 literal in brackets, as URIs want it.
func bracketIPv6(h string) string {
	if ip := net.ParseIP(h); ip != nil && ip.To4() == nil {
		return "[" + h + "]"
	}
	return h
}

func (a *App) listenStrings() []string {
	out := make([]string, 0, len(a.binding.Listeners))
	for _, l := range a.binding.Listeners {
		out = append(out, l.Network+"/"+l.Address)
	}
	return out
}

// parseListen reads "udp/host:port" (network defaulting to def).
func parseListen(s, def string) (listenerSpec, error) {
	na, err := caddy.ParseNetworkAddressWithDefaults(s, def, 0)
	if err != nil {
		return listenerSpec{}, fmt.Errorf("listen %q: %w", s, err)
	}
	if na.StartPort == 0 || na.PortRangeSize() != 1 {
		return listenerSpec{}, fmt.Errorf("listen %q: want one port, e.g. udp/:3478", s)
	}
	switch na.Network {
	case "udp", "udp4", "udp6", "tcp", "tcp4", "tcp6":
	default:
		return listenerSpec{}, fmt.Errorf("listen %q: network must be udp or tcp", s)
	}
	return listenerSpec{Network: na.Network, Address: net.JoinHostPort(na.Host, strconv.Itoa(int(na.StartPort)))}, nil
}

// parsePortRange reads "min-max", all of it: "10-20x" is refused.
func parsePortRange(s string) (uint16, uint16, error) {
	loStr, hiStr, _ := strings.Cut(s, "-")
	lo, errLo := strconv.Atoi(loStr)
	hi, errHi := strconv.Atoi(hiStr)
	if errLo != nil || errHi != nil || lo < 1 || hi > maxPort || lo > hi {
		return 0, 0, fmt.Errorf("relay_ports %q: want min-max within 1-65535", s)
	}
	return uint16(lo), uint16(hi), nil
}

// maxPort is the highest TCP/UDP port number.
const maxPort = 65535
