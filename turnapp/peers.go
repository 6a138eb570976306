package turnapp

import (
	"fmt"
	"net"
	"net/netip"
)

// DefaultDenyPeers are the peer ranges the relay refuses unless allow_peers
// names them: a TURN server that relays anywhere is a path into the
// networks behind it (loopback, private, link-local with cloud metadata at
// 169.254.169.254, CGNAT, multicast, reserved, and their IPv6 equivalents),
// and ranges no real peer is ever on (documentation, deprecated 6to4 relay,
// benchmarking) only serve probing. IPv4-mapped, NAT64 and 6to4 IPv6
// addresses are also checked as the IPv4 address they carry.
var DefaultDenyPeers = []string{
	"0.0.0.0/8",        // "this network", unspecified
	"10.0.0.0/8",       // RFC 1918
	"100.64.0.0/10",    // CGNAT (RFC 6598)
	"127.0.0.0/8",      // loopback
	"168.63.129.16/32", // Azure host endpoint (DNS, DHCP, health probes)
	"169.254.0.0/16",   // link-local, cloud metadata
	"172.16.0.0/12",    // RFC 1918
	"192.0.0.0/24",     // IETF protocol assignments
	"192.0.2.0/24",     // documentation (TEST-NET-1)
	"192.88.99.0/24",   // 6to4 relay anycast (deprecated, RFC 7526)
	"192.168.0.0/16",   // RFC 1918
	"198.18.0.0/15",    // benchmarking
	"198.51.100.0/24",  // documentation (TEST-NET-2)
	"203.0.113.0/24",   // documentation (TEST-NET-3)
	"224.0.0.0/4",      // multicast
	"240.0.0.0/4",      // reserved, incl. broadcast 255.255.255.255
	"::/128",           // unspecified
	"::1/128",          // loopback
	"64:ff9b:1::/48",   // local-use NAT64 (RFC 8215): reaches local IPv4 networks
	"100::/64",         // discard-only
	"2001::/23",        // IETF protocol assignments, incl. Teredo 2001::/32
	"2001:db8::/32",    // documentation
	"2002::/16",        // 6to4 (deprecated, RFC 7526)
	"fc00::/7",         // unique local
	"fe80::/10",        // link-local
	"fec0::/10",        // site-local (deprecated, RFC 3879)
	"ff00::/8",         // multicast
}

// nat64 is the well-known NAT64 prefix: its addresses reach the IPv4
// address in their last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// sixToFour is the 6to4 prefix: 2002:AABB:CCDD::/48 is the site behind the
// IPv4 address AA.BB.CC.DD, which a 6to4 relay reaches over IPv4.
var sixToFour = netip.MustParsePrefix("2002::/16")

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
// win, then the deny list refuses. An address that carries an IPv4 address
// (IPv4-mapped, NAT64, 6to4) is refused if either it or that IPv4 address
// is denied, and allowed if allow_peers names either.
func (p peerPolicy) permits(ip net.IP) bool {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	candidates := []netip.Addr{addr.Unmap()}
	if v4, ok := embeddedIPv4(addr); ok {
		candidates = append(candidates, v4)
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

// embeddedIPv4 returns the IPv4 address a NAT64 or 6to4 address reaches.
func embeddedIPv4(addr netip.Addr) (netip.Addr, bool) {
	b := addr.As16()
	switch {
	case nat64.Contains(addr):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFour.Contains(addr):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

func contains(list []netip.Prefix, a netip.Addr) bool {
	for _, pfx := range list {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}
