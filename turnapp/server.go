package turnapp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/pion/turn/v4"
	"go.uber.org/zap"
)

// server is one running pion/turn server with its sockets. It lives in a
// usage pool keyed by everything that needs new sockets, so a reload that
// keeps the listeners keeps the server and its live allocations; the rest
// of the config is swapped in through pol and tlsConf.
type server struct {
	pion     *turn.Server
	pol      atomic.Pointer[policy]
	tlsConf  atomic.Pointer[tls.Config]
	allocs   *allocations
	secrets  *secretMatcher
	refusals *refusalLog
	streams  connSet    // accepted TCP/TLS connections
	addrs    []net.Addr // the listeners' local addresses, in binding order
	// site takes the TURN connections that the caddy.listeners.turn
	// wrapper finds on the site's own port.
	site *handoffListener
}

// Destruct implements caddy.Destructor: the last config using these
// listeners is gone.
func (s *server) Destruct() error {
	if s.pion == nil {
		return nil
	}
	err := s.pion.Close()
	s.streams.closeAll()
	s.refusals.stop()
	return err
}

// setPolicy installs the current config's policy. Remembered secret
// matches are dropped: a secret that was removed must stop working.
func (s *server) setPolicy(p *policy) {
	s.pol.Store(p)
	s.secrets.reset()
}

// listen binds the sockets and starts pion. Nothing is bound before Start.
// Sockets come from Caddy's listener pool, which shares a socket between
// the old and the new config during a reload, so a reload that changes the
// relay settings but not the addresses can bind them again.
func (s *server) listen(ctx context.Context, b *binding, realm string) (err error) {
	s.allocs = newAllocations()
	s.refusals = newRefusalLog(s.logger)
	s.secrets = newSecretMatcher(s.pol.Load, s.refusals)
	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range closers {
				_ = c()
			}
		}
	}()
	gen, err := b.relayGenerator()
	if err != nil {
		return err
	}
	// observe answers 403 to requests for denied peers before pion sees
	// them; this is the second line, for anything that got past it.
	permit := func(client net.Addr, peer net.IP) bool {
		if s.pol.Load().peers.permits(peer) {
			return true
		}
		countPermissionDenied()
		s.refusals.info(msgPeerRefused, client, zap.String("peer", peer.String()))
		return false
	}
	cfg := turn.ServerConfig{
		Realm:         realm,
		AuthHandler:   s.authHandler,
		QuotaHandler:  s.quotaHandler,
		EventHandler:  s.events(),
		LoggerFactory: pionLoggerFactory{logger: s.logger},
	}
	for _, l := range b.Listeners {
		switch l.Network {
		case "udp", "udp4", "udp6":
			pcs, err := listenPackets(ctx, l, udpSockets())
			for _, pc := range pcs {
				closers = append(closers, pc.Close)
			}
			if err != nil {
				return err
			}
			s.addrs = append(s.addrs, pcs[0].LocalAddr())
			s.receiveBuffers(pcs, int(b.ReceiveBuffer))
			// pion reads each socket on its own goroutine, with its own
			// allocation manager: a client reaches one socket only.
			for _, pc := range pcs {
				cfg.PacketConnConfigs = append(cfg.PacketConnConfigs, turn.PacketConnConfig{
					PacketConn:            observedPacketConn{PacketConn: pc, observe: s.observe},
					RelayAddressGenerator: gen,
					PermissionHandler:     permit,
				})
			}
		case "tcp", "tcp4", "tcp6", "tls":
			network := l.Network
			if network == "tls" {
				network = "tcp"
			}
			ln, err := listenStream(ctx, network, l)
			if err != nil {
				return err
			}
			closers = append(closers, ln.Close)
			s.addrs = append(s.addrs, ln.Addr())
			if l.Network == "tls" {
				// The config is looked up per handshake, so a reload's
				// certificates (and Caddy's renewals) apply to new connections.
				ln = tls.NewListener(ln, &tls.Config{
					GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
						c := s.tlsConf.Load()
						if c == nil {
							return nil, errors.New("turn: no TLS configuration")
						}
						if c.GetConfigForClient != nil {
							return c.GetConfigForClient(hello)
						}
						return c, nil
					},
				})
			}
			cfg.ListenerConfigs = append(cfg.ListenerConfigs, s.streamListener(ln, gen, permit))
		default:
			return fmt.Errorf("turn: unsupported listener network %q", l.Network)
		}
	}
	// Always there, binding nothing: a config that adds the listener
	// wrapper then keeps the running server and its allocations.
	s.site = newHandoffListener()
	cfg.ListenerConfigs = append(cfg.ListenerConfigs, s.streamListener(s.site, gen, permit))
	s.pion, err = turn.NewServer(cfg)
	if err != nil {
		return fmt.Errorf("turn: starting server: %w", err)
	}
	return nil
}

// receiveBuffers sets the receive buffer of a UDP listener's sockets, and
// says so when the kernel granted less (net.core.rmem_max, without
// CAP_NET_ADMIN) or refused.
func (s *server) receiveBuffers(pcs []net.PacketConn, n int) {
	if n <= 0 {
		return // a binding built without one (tests): the kernel's default
	}
	for _, pc := range pcs {
		granted, err := setReceiveBuffer(pc, n)
		switch {
		case err != nil:
			s.logger().Warn("setting a TURN UDP socket's receive buffer", zap.String("address", pc.LocalAddr().String()), zap.Error(err))
			return
		case granted < n:
			s.logger().Info("TURN UDP receive buffer capped by the kernel (net.core.rmem_max): an overloaded server drops more; raise the sysctl, or run Caddy with CAP_NET_ADMIN",
				zap.String("address", pc.LocalAddr().String()), zap.Int("asked", n), zap.Int("granted", granted))
			return
		}
	}
}

// streamListener is the pion config of a stream listener: every stream
// connection, whichever way it arrives, goes through the same frame
// checks, idle timeouts and permission handler.
func (s *server) streamListener(ln net.Listener, gen turn.RelayAddressGenerator, permit turn.PermissionHandler) turn.ListenerConfig {
	return turn.ListenerConfig{
		Listener: observedListener{Listener: ln, observe: s.observe, live: &s.streams, allocated: s.allocs.has,
			timeouts: currentStreamTimeouts()},
		RelayAddressGenerator: gen,
		PermissionHandler:     permit,
	}
}

// udpSockets is udpSocketsPerListener, a variable for tests.
var udpSockets = udpSocketsPerListener

// listenPackets binds n UDP sockets to the listener's address (see
// udpSocketsPerListener); the ones after the first take the first one's
// port, which the kernel picked if the address has port 0. On error it
// returns the sockets it did bind, for the caller to close.
func listenPackets(ctx context.Context, l listenerSpec, n int) ([]net.PacketConn, error) {
	var pcs []net.PacketConn
	for i := range n {
		if i == 1 {
			host, _, err := net.SplitHostPort(l.Address)
			if err != nil {
				return pcs, fmt.Errorf("turn: %s/%s: %w", l.Network, l.Address, err)
			}
			_, port, err := net.SplitHostPort(pcs[0].LocalAddr().String())
			if err != nil {
				return pcs, fmt.Errorf("turn: %s/%s: %w", l.Network, l.Address, err)
			}
			l.Address = net.JoinHostPort(host, port)
		}
		v, err := listenVia(ctx, l.Network, l, udpListenConfig())
		if err != nil {
			return pcs, err
		}
		pc, ok := v.(net.PacketConn)
		if !ok {
			if c, ok := v.(interface{ Close() error }); ok {
				_ = c.Close()
			}
			return pcs, fmt.Errorf("turn: %s/%s is not a packet listener", l.Network, l.Address)
		}
		pcs = append(pcs, pc)
	}
	return pcs, nil
}

func listenStream(ctx context.Context, network string, l listenerSpec) (net.Listener, error) {
	v, err := listenVia(ctx, network, l, net.ListenConfig{})
	if err != nil {
		return nil, err
	}
	ln, ok := v.(net.Listener)
	if !ok {
		return nil, fmt.Errorf("turn: %s/%s is not a stream listener", network, l.Address)
	}
	return ln, nil
}

// listenVia binds through Caddy's listener pool.
func listenVia(ctx context.Context, network string, l listenerSpec, lc net.ListenConfig) (any, error) {
	na, err := caddy.ParseNetworkAddress(network + "/" + l.Address)
	if err != nil {
		return nil, fmt.Errorf("turn: %s/%s: %w", network, l.Address, err)
	}
	v, err := na.Listen(ctx, 0, lc)
	if err != nil {
		return nil, fmt.Errorf("turn: listening on %s/%s: %w", network, l.Address, err)
	}
	return v, nil
}

// logger is the current config's logger.
func (s *server) logger() *zap.Logger { return s.pol.Load().logger }

// authHandler checks the credential and the allocation's age.
func (s *server) authHandler(username, realm string, src net.Addr) ([]byte, bool) {
	if s.allocs.overAge(src, s.pol.Load().maxLifetime) {
		s.refusals.info("TURN allocation past max_lifetime not extended", src, zapUser(username))
		return nil, false
	}
	return s.secrets.authHandler(username, realm, src)
}

func (s *server) quotaHandler(username, _ string, src net.Addr) bool {
	p := s.pol.Load()
	if s.allocs.underQuota(username, p.maxPerUser) {
		return true
	}
	countQuotaRefusal()
	s.refusals.info("TURN allocation quota reached", src, zapUser(username), zap.Int("max_allocations_per_user", p.maxPerUser))
	return false
}

func (s *server) events() turn.EventHandler {
	return turn.EventHandler{
		OnAllocationCreated: func(src, _ net.Addr, protocol, username, _ string, relay net.Addr, _ int) {
			s.allocs.created(src, username)
			countAllocationCreated()
			s.pol.Load().logger.Debug("TURN allocation created", zapUser(username), zap.String("client", src.String()),
				zap.String("protocol", protocol), zap.String("relay", relay.String()))
		},
		OnAllocationDeleted: func(src, _ net.Addr, protocol, username, _ string) {
			s.allocs.deleted(src, username)
			s.pol.Load().logger.Debug("TURN allocation deleted", zapUser(username), zap.String("client", src.String()), zap.String("protocol", protocol))
		},
		// pion reports every request it fails to handle, e.g. one for an
		// allocation that does not exist, which needs no credential: a
		// client-caused line like the refusals.
		OnAllocationError: func(src, _ net.Addr, protocol, message string) {
			s.refusals.info("TURN allocation error", src, zap.String("protocol", protocol), zap.String("error", message))
		},
	}
}
