// crosssite_test.go tests how requests from web pages of other sites are
// told from those of programs and of the proxy's own page, and that CORS
// headers are dropped.

package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/assert"
)

func TestCrossSite(t *testing.T) {
	const host = "127.0.0.1:8787"
	cases := []struct {
		name    string
		header  http.Header
		foreign bool
	}{
		{"an SDK: no marks", nil, false},
		{"own origin", http.Header{"Origin": {"http://127.0.0.1:8787"}}, false},
		{"own origin behind TLS", http.Header{"Origin": {"https://127.0.0.1:8787"}}, false},
		{"own origin, same-origin", http.Header{"Origin": {"http://127.0.0.1:8787"}, "Sec-Fetch-Site": {"same-origin"}}, false},
		{"typed address", http.Header{"Sec-Fetch-Site": {"none"}}, false},
		{"same-origin, any case", http.Header{"Sec-Fetch-Site": {"Same-Origin"}}, false},
		{"cross-site", http.Header{"Sec-Fetch-Site": {"cross-site"}}, true},
		{"same-site", http.Header{"Sec-Fetch-Site": {"same-site"}}, true},
		{"unknown Sec-Fetch-Site", http.Header{"Sec-Fetch-Site": {"elsewhere"}}, true},
		{"two Sec-Fetch-Site", http.Header{"Sec-Fetch-Site": {"same-origin", "cross-site"}}, true},
		{"foreign origin", http.Header{"Origin": {"https://evil.example"}}, true},
		{"null origin", http.Header{"Origin": {"null"}}, true},
		{"empty origin", http.Header{"Origin": {""}}, true},
		{"other port", http.Header{"Origin": {"http://127.0.0.1:3000"}}, true},
		{"other loopback name", http.Header{"Origin": {"http://localhost:8787"}}, true},
		{"own and foreign origin", http.Header{"Origin": {"http://127.0.0.1:8787", "https://evil.example"}}, true},
		{"not a web scheme", http.Header{"Origin": {"file://127.0.0.1:8787"}}, true},
		{"origin with a path", http.Header{"Origin": {"http://127.0.0.1:8787/x"}}, true},
		{"origin with user info", http.Header{"Origin": {"http://evil@127.0.0.1:8787"}}, true},
		{"not a URL", http.Header{"Origin": {"http://[::1"}}, true},
		{"foreign origin, same-origin claimed", http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"same-origin"}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://"+host+"/v1/models", nil)
			r.Header = c.header
			if r.Header == nil {
				r.Header = http.Header{}
			}
			why := crossSite(r)
			assert.Equal(t, c.foreign, why != "", "reason %q", why)
		})
	}
}

func TestDropCORS(t *testing.T) {
	h := http.Header{}
	for name, v := range fakeapi.CORSHeaders {
		h.Set(name, v)
	}
	h["access-control-allow-methods"] = []string{"POST"} // not canonical, as a Header may hold
	h.Set("Content-Type", "application/json")
	h.Set("Vary", "Origin")
	dropCORS(h)
	assert.Equal(t, http.Header{"Content-Type": {"application/json"}, "Vary": {"Origin"}}, h)
	dropCORS(nil) // a response without trailers
}
