// crosssite.go tells requests that web pages of other sites make from a
// browser from those of programs, and keeps the upstream's CORS headers from
// reaching browsers. Without a client token, a browser request to a loopback
// proxy carries the user's keys; any page the user visits could send one.

package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// crossSite returns why r comes from a page of another site, or "" when it
// does not. Browsers mark their requests with Sec-Fetch-Site, and with
// Origin on most that are not plain navigations; SDKs and curl send neither.
// Either mark is enough to refuse, whatever the method: a page that can only
// read (a GET) reads the API with the pool's keys, and the upstream's answer
// may let it through CORS. A mark that cannot be told apart counts as
// foreign.
func crossSite(r *http.Request) string {
	if site := r.Header.Values("Sec-Fetch-Site"); len(site) > 0 && !sameSiteFetch(site) {
		return "Sec-Fetch-Site: " + strings.Join(site, ", ")
	}
	for _, origin := range r.Header.Values("Origin") {
		if !ownOrigin(origin, r.Host) {
			return "Origin: " + origin
		}
	}
	return ""
}

// sameSiteFetch reports whether the Sec-Fetch-Site values say the request
// came from the proxy's own page ("same-origin") or from the user, typing an
// address or opening a bookmark ("none"). "same-site" is another page of the
// site, which on loopback is any other local server: foreign too.
func sameSiteFetch(values []string) bool {
	if len(values) != 1 {
		return false
	}
	v := strings.TrimSpace(values[0])
	return strings.EqualFold(v, "same-origin") || strings.EqualFold(v, "none")
}

// ownOrigin reports whether origin is the proxy's own, the one its status
// page has: http or https and the Host the request was sent to. The scheme
// is not compared because a proxy behind a TLS front sees the page's https
// as http, as http.CrossOriginProtection reasons too. "null" (sandboxed
// frames, data: URLs, some redirects) is never the proxy's.
func ownOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return false // an Origin is scheme://host[:port], nothing more
	}
	return u.Host != "" && strings.EqualFold(u.Host, host)
}

// dropCORS removes every Access-Control-* header of an upstream response. An
// upstream that allows any origin (Access-Control-Allow-Origin: *) would
// otherwise let a browser give a page the answer to a request made with the
// pool's keys; the proxy's clients are programs, which need none of them.
func dropCORS(h http.Header) {
	for name := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(name), "Access-Control-") {
			delete(h, name)
		}
	}
}
