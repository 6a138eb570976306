package turnapp

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// servers holds running TURN servers by binding, across config reloads.
var servers = caddy.NewUsagePool()

// relayAddresses settles where relays bind and which address peers learn.
func (a *App) relayAddresses(b *binding, repl *caddy.Replacer) error {
	bind := repl.ReplaceKnown(a.RelayAddress, "")
	if bind == "" {
		bind = "0.0.0.0"
	}
	bindIP := net.ParseIP(bind)
	if bindIP == nil {
		return fmt.Errorf("relay_address %q is not an IP address", bind)
	}
	public := repl.ReplaceKnown(a.PublicIP, "")
	switch {
	case public != "":
		if net.ParseIP(public) == nil {
			return fmt.Errorf("public_ip %q is not an IP address", public)
		}
	case !bindIP.IsUnspecified():
		public = bindIP.String()
	default:
		// Like coturn without external-ip: the first global address.
		// Behind NAT, set public_ip.
		ip, err := firstGlobalIP()
		if err != nil {
			return err
		}
		public = ip.String()
		a.logger.Warn("turn: public_ip not set; advertising a local interface address", zap.String("public_ip", public))
	}
	b.RelayIP, b.PublicIP = bindIP.String(), public
	return nil
}

// firstGlobalIP returns the first global unicast IPv4 address of the host,
// or loopback when there is none (relaying then only works locally).
func firstGlobalIP() (net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("turn: listing interface addresses for public_ip: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP, nil
		}
	}
	return net.IPv4(127, 0, 0, 1), nil
}

// defaultRealm is the TLS hostname, else the first host matched by the
// HTTP app's routes (servers in name order), else "caddy".
func (a *App) defaultRealm(ctx caddy.Context) string {
	if a.TLS != nil && a.TLS.Hostname != "" {
		return a.TLS.Hostname
	}
	app, err := ctx.AppIfConfigured("http")
	if err != nil {
		return "caddy"
	}
	httpApp, ok := app.(*caddyhttp.App)
	if !ok {
		return "caddy"
	}
	names := make([]string, 0, len(httpApp.Servers))
	for name := range httpApp.Servers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, route := range httpApp.Servers[name].Routes {
			for _, set := range route.MatcherSetsRaw {
				var hosts []string
				if raw, ok := set["host"]; ok && json.Unmarshal(raw, &hosts) == nil && len(hosts) > 0 {
					return hosts[0]
				}
			}
		}
	}
	return "caddy"
}
