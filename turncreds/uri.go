package turncreds

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// URI is a parsed STUN (RFC 7064) or TURN (RFC 7065) URI:
//
//	stun:host[:port]    stuns:host[:port]
//	turn:host[:port][?transport=udp|tcp]    turns:host[:port][?transport=udp|tcp]
//
// where host is a DNS name, an IPv4 address, or a bracketed IPv6 address.
type URI struct {
	// Scheme is "stun", "stuns", "turn" or "turns", always lower case.
	Scheme string
	// Host is the DNS name or IP address, without brackets for IPv6.
	Host string
	// Port is 0 when the URI names none; clients then use 3478, or 5349
	// for stuns/turns.
	Port int
	// Transport is "", "udp" or "tcp"; only TURN URIs may have one.
	Transport string
}

// IsTURN reports whether u is a turn: or turns: URI.
func (u URI) IsTURN() bool { return u.Scheme == "turn" || u.Scheme == "turns" }

// String formats u in its canonical form, as browsers expect it.
func (u URI) String() string {
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteByte(':')
	if strings.Contains(u.Host, ":") {
		b.WriteString("[" + u.Host + "]")
	} else {
		b.WriteString(u.Host)
	}
	if u.Port != 0 {
		b.WriteString(":" + strconv.Itoa(u.Port))
	}
	if u.Transport != "" {
		b.WriteString("?transport=" + u.Transport)
	}
	return b.String()
}

// ParseURI parses and validates a STUN or TURN URI. The error says what is
// wrong but does not repeat s; callers name the URI (see URIError).
func ParseURI(s string) (URI, error) {
	var u URI
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return u, errors.New("missing scheme (want stun:, stuns:, turn: or turns:)")
	}
	u.Scheme = strings.ToLower(scheme) // schemes are case-insensitive (RFC 3986)
	switch u.Scheme {
	case "stun", "stuns", "turn", "turns":
	default:
		return u, errors.New("unknown scheme " + strconv.Quote(scheme) + " (want stun, stuns, turn or turns)")
	}
	// A frequent mistake copied from http URLs; RFC 7064/7065 have no authority part.
	if strings.HasPrefix(rest, "//") {
		return u, errors.New(`must not contain "//" (write ` + u.Scheme + `:host:port)`)
	}
	if strings.ContainsAny(rest, "#@/") {
		return u, errors.New("must not contain a path, fragment or user info")
	}

	hostport, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		if !u.IsTURN() {
			return u, errors.New("STUN URIs take no query")
		}
		t, err := parseTransport(query)
		if err != nil {
			return u, err
		}
		u.Transport = t
	}

	host, port, err := splitHostPort(hostport)
	if err != nil {
		return u, err
	}
	if u.Host, err = parseHost(host); err != nil {
		return u, err
	}
	u.Port = port
	return u, nil
}

// parseTransport accepts exactly "transport=udp" or "transport=tcp".
func parseTransport(query string) (string, error) {
	key, val, _ := strings.Cut(query, "=")
	if key != "transport" {
		return "", errors.New("only the transport query parameter is allowed")
	}
	switch v := strings.ToLower(val); v {
	case "udp", "tcp":
		return v, nil
	default:
		return "", errors.New("transport must be udp or tcp")
	}
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port". Port is 0
// when absent.
func splitHostPort(hp string) (host string, port int, err error) {
	var portStr string
	var hasPort bool
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", 0, errors.New("missing ']' after IPv6 address")
		}
		host = hp[:end+1]
		switch after := hp[end+1:]; {
		case after == "":
		case after[0] == ':':
			portStr, hasPort = after[1:], true
		default:
			return "", 0, errors.New("unexpected characters after IPv6 address")
		}
	} else {
		host, portStr, hasPort = strings.Cut(hp, ":")
		if strings.Contains(portStr, ":") {
			return "", 0, errors.New("IPv6 addresses must be in brackets")
		}
	}
	if !hasPort {
		return host, 0, nil
	}
	if portStr == "" {
		return "", 0, errors.New("missing port after ':'")
	}
	for _, c := range portStr {
		if c < '0' || c > '9' {
			return "", 0, errors.New("port is not a number")
		}
	}
	port, err = strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, errors.New("port out of range")
	}
	return host, port, nil
}

// parseHost validates a bracketed IPv6 address, an IPv4 address or a DNS
// name, and returns it without brackets.
func parseHost(host string) (string, error) {
	if host == "" {
		return "", errors.New("missing host")
	}
	if strings.HasPrefix(host, "[") {
		ip, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", errors.New("invalid IPv6 address")
		}
		return ip.String(), nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	// A DNS name never ends in an all-numeric label, so this is meant as IPv4.
	if isDigits(labels[len(labels)-1]) {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is4() {
			return "", errors.New("invalid IPv4 address")
		}
		return host, nil
	}
	if len(host) > 253 {
		return "", errors.New("host name too long")
	}
	for _, l := range labels {
		if !validLabel(l) {
			return "", errors.New("invalid host name")
		}
	}
	return host, nil
}

// validLabel reports whether l is an LDH DNS label (RFC 1123).
func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range l {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// URIError reports an invalid URI in a configuration list.
type URIError struct {
	// Kind is "TURN" or "STUN": the list the URI was found in.
	Kind string
	// URI is the URI as written, after placeholder replacement.
	URI string
	// Err says what is wrong with it.
	Err error
}

func (e *URIError) Error() string {
	return "invalid " + e.Kind + " URI " + strconv.Quote(e.URI) + ": " + e.Err.Error()
}

func (e *URIError) Unwrap() error { return e.Err }

// parseList parses raw URIs that must all be TURN URIs (wantTURN) or all STUN
// URIs, and returns them in canonical form.
func parseList(raw []string, wantTURN bool) ([]string, error) {
	kind, list, other := "STUN", "stun", "uris"
	if wantTURN {
		kind, list, other = "TURN", "uris", "stun"
	}
	out := make([]string, 0, len(raw))
	for _, s := range raw {
		u, err := ParseURI(s)
		if err == nil && u.IsTURN() != wantTURN {
			err = errors.New(u.Scheme + ": URIs belong in " + other + ", not " + list)
		}
		if err != nil {
			return nil, &URIError{Kind: kind, URI: s, Err: err}
		}
		out = append(out, u.String())
	}
	return out, nil
}
