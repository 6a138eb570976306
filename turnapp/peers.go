package turnapp

import (
	"fmt"
	"net"
	"net/netip"
)

// DefaultDenyPeers are the peer ranges the relay refuses unless allow_peers
// names them: a TURN server that relays anywhere is a path into the
// networks behind it (loopback, private, link-local with cloud metadata at
// 169.254.169.254, CGNAT, multicast, reserved, and their IPv6 equivalents).
// IPv4-mapped and NAT64 IPv6 addresses are checked as the IPv4 address
// they carry.
var DefaultDenyPeers = []string{
	"0.0.0.0/8",      // "this network", unspecified
	"10.0.0.0/8",     // RFC 1918
	"100.64.0.0/10",  // CGNAT (RFC 6598)
	"127.0.0.0/8",    // loopback
	"169.254.0.0/16", // link-local, cloud metadata
	"172.16.0.0/12",  // RFC 1918
	"192.0.0.0/24",   // IETF protocol assignments
	"192.168.0.0/16", // RFC 1918
	"198.18.0.0/15",  // benchmarking
	"224.0.0.0/4",    // multicast
	"240.0.0.0/4",    // reserved, incl. broadcast 255.255.255.255
	"::/128",         // unspecified
	"::1/128",        // loopback
	"fc00::/7",       // unique local
	"fe80::/10",      // link-local
	"ff00::/8",       // multicast
	"2001:db8::/32",  // documentation
	"100::/64",       // discard-only
}

// nat64 is the well-known NAT64 prefix: its addresses reach the IPv4
// address in their last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// peerPolicy decides which peer addresses allocations may relay to.
type peerPolicy struct {
	deny, allow []netip.Prefix
}

// newPeerPolicy combines the built-in deny list with the configured lists.
func newPeerPolicy(deny, allow []string) (peerPolicy, error) {
	var p peerPolicy
	var err error
	if p.deny, err = parsePrefixes(append(append([]string{}, DefaultDenyPeers...), deny...)); err != nil {
		return p, fmt.Errorf("deny_peers: %w", err)
	}
	if p.allow, err = parsePrefixes(allow); err != nil {
		return p, fmt.Errorf("allow_peers: %w", err)
	}
	return p, nil
}

// parsePrefixes reads CIDRs; a bare IP means just that address.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if pfx, err := netip.ParsePrefix(s); err == nil {
			out = append(out, pfx.Masked())
			continue
		}
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("invalid CIDR or IP %q", s)
		}
		out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
	}
	return out, nil
}

// permits reports whether relaying to ip is allowed: explicit exceptions
// win, then the deny list refuses.
func (p peerPolicy) permits(ip net.IP) bool {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	candidates := []netip.Addr{addr.Unmap()}
	if addr.Is6() && nat64.Contains(addr) {
		b := addr.As16()
		candidates = append(candidates, netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	for _, a := range candidates {
		if contains(p.allow, a) {
			return true
		}
	}
	for _, a := range candidates {
		if contains(p.deny, a) {
			return false
		}
	}
	return true
}

func contains(list []netip.Prefix, a netip.Addr) bool {
	for _, pfx := range list {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}
