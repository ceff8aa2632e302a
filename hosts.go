package credpool

import (
	"net/http"
	"strings"
)

// keyed reports whether req's host may receive a key. With WithHosts, only
// the listed hosts may. Without it, every host may except the target of a
// redirect that left the host where the redirect chain started: http.Client
// sets req.Response on each redirected request.
func (t *Transport) keyed(req *http.Request) bool {
	if t.cfg.hosts != nil {
		return hostAllowed(t.cfg.hosts, req.URL.Host)
	}
	if req.Response == nil {
		return true
	}
	origin := req
	for origin.Response != nil && origin.Response.Request != nil {
		origin = origin.Response.Request
	}
	return origin.URL != nil && strings.EqualFold(origin.URL.Hostname(), req.URL.Hostname())
}

// hostAllowed reports whether host (as in URL.Host, with an optional port)
// matches an entry of WithHosts.
func hostAllowed(allowed []string, host string) bool {
	host = strings.ToLower(host)
	name := host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		name = host[:i]
	}
	name = strings.Trim(name, "[]")
	for _, a := range allowed {
		switch {
		case a == host || a == name:
			return true
		case strings.HasPrefix(a, "*.") && strings.HasSuffix(name, a[1:]):
			return true
		}
	}
	return false
}
