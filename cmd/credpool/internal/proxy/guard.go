// guard.go keeps the proxy from being an open relay: the client token, and
// the checks that keep web pages from using a proxy on loopback. The rule
// that a proxy listening beyond loopback must have a token is the command's
// (checkToken, in cmd/credpool/proxycmd.go).

package proxy

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
)

// IsLoopback reports whether the listen address addr ("host:port") accepts
// connections from this machine only. An empty host listens everywhere; a
// host name other than localhost is not trusted to resolve to loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// guard admits requests that carry the client token. Clients present it as
// their API key: "Authorization: Bearer <token>" (OpenAI-style SDKs), or in
// X-Api-Key, Api-Key or X-Goog-Api-Key (Anthropic, Azure and Gemini SDKs).
type guard struct {
	sum [sha256.Size]byte // of the token; the zero value when there is none
	set bool
}

func newGuard(token string) guard {
	if token == "" {
		return guard{}
	}
	return guard{sum: sha256.Sum256([]byte(token)), set: true}
}

// ok reports whether r may pass: always when no token is set, else when one
// of the credential headers holds the token.
func (g guard) ok(r *http.Request) bool {
	if !g.set {
		return true
	}
	match := 0
	for _, c := range presented(r) {
		match |= g.matches(c)
	}
	return match == 1
}

// matches compares a presented credential with the token in constant time.
// Both are hashed first, so that not even the token's length leaks through
// the time a comparison takes.
func (g guard) matches(presented string) int {
	sum := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(sum[:], g.sum[:])
}

// presented returns the credentials a request carries.
func presented(r *http.Request) []string {
	var out []string
	if scheme, v, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		out = append(out, strings.TrimSpace(v))
	}
	for _, h := range keyHeaders {
		if v := r.Header.Get(h); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// require wraps h so that only requests with the token reach it; the others
// get a 401 in the shape OpenAI's SDKs show, before a byte of their body is
// read, and the connection is closed after it.
func (g guard) require(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.ok(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="credpool"`)
			refuse(w, r, http.StatusUnauthorized, "credpool proxy: missing or wrong client token (send it as your API key)", "invalid_client_token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// browserSafe wraps h against web pages. It refuses every request that a
// page of another site makes (crossSite), whatever its method: without a
// client token a page could read the API as the user, and with one it has
// no business trying. On loopback it also refuses a Host that is not a
// loopback name, which is what a DNS rebinding attack sends: the page's
// requests are then same-origin in the browser's eyes. SDKs and curl send
// neither kind.
func browserSafe(h http.Handler, loopback bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if loopback && !loopbackHost(r.Host) {
			refuse(w, r, http.StatusMisdirectedRequest, "credpool proxy: this proxy listens on loopback and answers only to a loopback Host", "misdirected_request")
			return
		}
		if why := crossSite(r); why != "" {
			refuse(w, r, http.StatusForbidden, "credpool proxy: a web page of another site may not use this proxy ("+why+
				"); programs and the proxy's own status page can", "cross_site_request")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names loopback.
func loopbackHost(hostport string) bool {
	host := hostport
	if name, _, err := net.SplitHostPort(hostport); err == nil {
		host = name
	}
	return IsLoopback(net.JoinHostPort(strings.Trim(host, "[]"), "0"))
}
