package credpool

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// keyed reports whether req may carry a key. With WithHosts, only the listed
// hosts may. A redirect, which http.Client marks by setting req.Response,
// keeps the key only where the request that started the chain went: the same
// scheme, host and port, so that neither https -> http nor another port on
// the same name (another service, perhaps another owner) ever sees it; or a
// host and port that WithHosts names exactly, never by a downgrade to http.
func (t *Transport) keyed(req *http.Request) bool {
	if req.Response == nil {
		return t.cfg.hosts == nil || hostAllowed(t.cfg.hosts, req.URL.Host)
	}
	origin := req
	for origin.Response != nil && origin.Response.Request != nil {
		origin = origin.Response.Request
	}
	if origin.URL == nil {
		return false
	}
	if sameOrigin(origin.URL, req.URL) {
		return t.cfg.hosts == nil || hostAllowed(t.cfg.hosts, req.URL.Host)
	}
	downgrade := strings.EqualFold(origin.URL.Scheme, "https") && !strings.EqualFold(req.URL.Scheme, "https")
	return !downgrade && t.cfg.hosts != nil && hostPortListed(t.cfg.hosts, req.URL)
}

// sameOrigin reports whether a and b have the same scheme, host and port,
// default ports made explicit.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		effectivePort(a) == effectivePort(b)
}

// effectivePort is u's port, or its scheme's default.
func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// hostPortListed reports whether an entry of WithHosts names u's host with
// u's port exactly: what a redirect to another origin needs.
func hostPortListed(allowed []string, u *url.URL) bool {
	want := net.JoinHostPort(strings.ToLower(u.Hostname()), effectivePort(u))
	for _, a := range allowed {
		if h, p, err := net.SplitHostPort(a); err == nil && net.JoinHostPort(h, p) == want {
			return true
		}
	}
	return false
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

// hostEntry checks an entry of WithHosts: a host name or IP literal, with an
// optional port, or "*." and a domain. It returns what is wrong, or "".
func hostEntry(h string) string {
	if strings.ContainsAny(h, "/ \t\r\n@?#") {
		return "is not a host"
	}
	name := h
	if host, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "has a bad port"
		}
		name = host
	} else if strings.Count(h, ":") == 1 {
		return "has a bad port"
	}
	if net.ParseIP(strings.Trim(name, "[]")) != nil {
		return ""
	}
	name = strings.TrimPrefix(name, "*.")
	if name == "" || len(name) > 253 || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		return "is not a host"
	}
	for _, c := range name {
		if !(c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			if c == '*' {
				return `has a wildcard other than a leading "*.", which never matches`
			}
			return "is not a host"
		}
	}
	return ""
}
