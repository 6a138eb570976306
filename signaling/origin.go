package signaling

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// originPolicy decides which Origin headers may open a signaling session.
type originPolicy struct {
	any  bool
	list map[string]bool // normalized "scheme://host[:port]"
}

// parseOrigins validates the configured origins. An empty list means the
// request's own host only.
func parseOrigins(list []string) (originPolicy, error) {
	p := originPolicy{list: make(map[string]bool)}
	for _, o := range list {
		if o == "*" {
			p.any = true
			continue
		}
		norm, err := normalizeOrigin(o)
		if err != nil {
			return p, fmt.Errorf("origins: %w", err)
		}
		p.list[norm] = true
	}
	return p, nil
}

func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", fmt.Errorf("invalid origin %q: want scheme://host[:port]", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// allowed reports whether r's Origin may connect. Requests without an
// Origin header come from non-browser clients, which the header cannot
// protect against anyway, so they are let in.
func (p originPolicy) allowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	norm, err := normalizeOrigin(origin)
	if err != nil {
		return false
	}
	if len(p.list) > 0 {
		return p.list[norm]
	}
	u, _ := url.Parse(norm)
	return strings.EqualFold(u.Host, r.Host)
}
