// proxy_test.go tests the proxy end to end over loopback: the pool's key
// replaces the client's, a revoked key rotates, streams flow event by event,
// and the proxy is no open relay.

package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProxyReplacesClientCredentials(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey}, "")

	code, body := p.do(t, http.MethodGet, "/v1/models?key="+clientKey+"&limit=5", map[string]string{
		"Authorization":  "Bearer " + clientKey,
		"X-Api-Key":      clientKey,
		"Api-Key":        clientKey,
		"X-Goog-Api-Key": clientKey,
	})
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, fakeapi.ModelsBody, body)

	got := up.Requests()
	require.Len(t, got, 1)
	r := got[0]
	assert.Equal(t, "/v1/models", r.Path)
	assert.Equal(t, "Bearer "+goodKey, r.Header.Get("Authorization"), "the pool's key goes upstream")
	for _, h := range []string{"X-Api-Key", "Api-Key", "X-Goog-Api-Key"} {
		assert.Empty(t, r.Header.Values(h), "the client's %s is dropped", h)
	}
	assert.False(t, r.Query.Has("key"), "the client's key query parameter is dropped")
	assert.Equal(t, "5", r.Query.Get("limit"), "other parameters pass")
	for name, values := range r.Header {
		for _, v := range values {
			assert.NotContains(t, v, clientKey, "header %s", name)
		}
	}
}

func TestProxyRotatesRevokedKey(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{revokedKey, goodKey}, "")

	for range 4 {
		code, body := p.do(t, http.MethodPost, "/v1/chat/completions", bearer(clientKey))
		require.Equal(t, http.StatusOK, code, "every request succeeds on the good key: %s", body)
	}
	st := p.status(t, "")
	assert.Equal(t, credpool.StateDead, st[0].State)
	assert.Equal(t, "auth_permanent", *st[0].Reason)
	assert.Equal(t, credpool.StateOK, st[1].State)

	revoked := 0
	for _, r := range up.Requests() {
		if r.Header.Get("Authorization") == "Bearer "+revokedKey {
			revoked++
		}
	}
	assert.Equal(t, 1, revoked, "the revoked key is tried once, then never again")
}

func TestProxyStreamsEventByEvent(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey}, "")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/v1/stream", strings.NewReader(`{"stream":true}`))
	require.NoError(t, err)
	resp, err := p.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() != "" {
				lines <- sc.Text()
			}
		}
	}()
	select {
	case first := <-lines:
		assert.Equal(t, `data: {"n":1}`, first)
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not arrive while the upstream was still streaming: the proxy buffers")
	}
	select {
	case <-up.Released():
		t.Fatal("the upstream was released before the first event was read")
	default:
	}
	up.Release()
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	assert.Equal(t, []string{`data: {"n":2}`, `data: {"n":3}`, `data: [DONE]`}, rest)
}

func TestProxyClientToken(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey}, testToken)

	for name, h := range map[string]map[string]string{
		"none":              nil,
		"wrong bearer":      bearer("client-token-0123456789abcdeX"),
		"prefix":            bearer(testToken[:len(testToken)-1]),
		"wrong x-api":       {"X-Api-Key": "nope"},
		"basic, not bearer": {"Authorization": "Basic " + testToken},
	} {
		code, body := p.do(t, http.MethodGet, "/v1/models", h)
		assert.Equal(t, http.StatusUnauthorized, code, name)
		assert.Contains(t, body, "invalid_client_token", name)
	}
	assert.Empty(t, up.Requests(), "nothing unauthorized reaches the upstream")

	for name, h := range map[string]map[string]string{
		"bearer":           bearer(testToken),
		"x-api-key":        {"X-Api-Key": testToken},
		"x-goog-api-key":   {"X-Goog-Api-Key": testToken},
		"bearer, any case": {"Authorization": "bearer " + testToken},
	} {
		code, body := p.do(t, http.MethodGet, "/v1/models", h)
		assert.Equal(t, http.StatusOK, code, "%s: %s", name, body)
	}
	for _, r := range up.Requests() {
		for name, values := range r.Header {
			for _, v := range values {
				assert.NotContains(t, v, testToken, "the client token never goes upstream (%s)", name)
			}
		}
	}
}

// TestProxyRefusesBrowserAttacks checks that no web page of another site can
// use a proxy that needs no token: whatever the method or path, a request
// that a browser marks as cross-site, or whose Origin is not the proxy's, is
// refused before it reaches the upstream, and so is a DNS-rebound Host.
func TestProxyRefusesBrowserAttacks(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey}, "")
	own := p.URL // http://127.0.0.1:<port>, the Origin of the proxy's own page
	cases := []struct {
		name, method, path string
		header             map[string]string
		want               int
	}{
		{"cross-site read", http.MethodGet, "/v1/models", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site read", http.MethodGet, "/v1/models", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"foreign Origin read", http.MethodGet, "/v1/models", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"null Origin read", http.MethodGet, "/v1/models", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"other loopback Origin", http.MethodGet, "/v1/models", map[string]string{"Origin": "http://localhost:1"}, http.StatusForbidden},
		{"cross-site spend", http.MethodPost, "/v1/chat/completions", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"preflight", http.MethodOptions, "/v1/chat/completions", map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, http.StatusForbidden},
		{"foreign Origin, same-origin claimed", http.MethodGet, "/v1/models", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}, http.StatusForbidden},
		{"status", http.MethodGet, "/credpool/status", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"metrics", http.MethodGet, "/metrics", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"reset", http.MethodPost, "/credpool/reset?key=0", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"disable", http.MethodPost, "/credpool/disable?key=0", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"enable", http.MethodPost, "/credpool/enable?key=0", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"the page, framed", http.MethodGet, "/credpool/", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"status from the proxy's page", http.MethodGet, "/credpool/status", map[string]string{"Origin": own, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"typed in the address bar", http.MethodGet, "/credpool/", map[string]string{"Sec-Fetch-Site": "none"}, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := p.do(t, c.method, c.path, c.header)
			assert.Equal(t, c.want, code, body)
			if c.want == http.StatusForbidden {
				assert.Contains(t, body, "cross_site_request")
			}
		})
	}

	req, err := http.NewRequest(http.MethodGet, p.URL+"/v1/models", nil)
	require.NoError(t, err)
	req.Host = "rebound.evil.example"
	resp, err := p.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMisdirectedRequest, resp.StatusCode, "a DNS-rebound Host is refused on loopback")
	assert.Empty(t, up.Requests(), "nothing a page sent reaches the upstream")

	for name, h := range map[string]map[string]string{
		"an SDK":          nil,
		"the own origin":  {"Origin": own},
		"same-origin":     {"Sec-Fetch-Site": "same-origin"},
		"a user's action": {"Sec-Fetch-Site": "none"},
	} {
		code, body := p.do(t, http.MethodPost, "/v1/chat/completions", h)
		assert.Equal(t, http.StatusOK, code, "%s: %s", name, body)
	}
}

// TestProxyDropsCORSHeaders checks that no upstream answer carries
// Access-Control-* headers to the client, success, error or stream: they
// would let a browser hand the answer to a page of another site.
func TestProxyDropsCORSHeaders(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	up.Release() // the stream runs to its end at once
	ok := newTestProxy(t, up, []string{goodKey}, "")
	revoked := newTestProxy(t, up, []string{revokedKey}, "")
	for _, c := range []struct {
		name string
		p    *testProxy
		path string
		want int
	}{
		{"success", ok, "/v1/models", http.StatusOK},
		{"stream", ok, "/v1/stream", http.StatusOK},
		{"error", revoked, "/v1/models", http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := c.p.Client().Get(c.p.URL + c.path)
			require.NoError(t, err)
			defer resp.Body.Close()
			_, err = io.Copy(io.Discard, resp.Body)
			require.NoError(t, err)
			assert.Equal(t, c.want, resp.StatusCode)
			for name := range resp.Header {
				assert.False(t, strings.HasPrefix(name, "Access-Control-"), "%s reached the client", name)
			}
		})
	}
	require.NotEmpty(t, up.Requests())
	assert.Equal(t, "*", fakeapi.CORSHeaders["Access-Control-Allow-Origin"], "the upstream did send them")
}

func TestProxyNoKeysIs503(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{limitedKey}, "")

	code, body := p.do(t, http.MethodGet, "/v1/models", nil)
	assert.Equal(t, http.StatusTooManyRequests, code, "the provider's answer is handed back: %s", body)

	resp, err := p.Client().Get(p.URL + "/v1/models")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "no usable key")
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	assert.InDelta(t, 600, retry, 5)
	assert.Len(t, up.Requests(), 1, "the cooling key is not sent again")
}

// TestUpstreamWithAPath: the base URL every provider documents carries its
// version (https://api.openai.com/v1), and SDKs send it in every path: the
// two are joined without doubling the shared prefix.
func TestUpstreamWithAPath(t *testing.T) {
	cases := []struct{ upstream, path, want string }{
		{upstream: "https://api.openai.com/v1", path: "/v1/chat/completions", want: "https://api.openai.com/v1/chat/completions"},
		{upstream: "https://api.openai.com/v1/", path: "/v1/models", want: "https://api.openai.com/v1/models"},
		{upstream: "https://api.openai.com/v1", path: "/chat/completions", want: "https://api.openai.com/v1/chat/completions"},
		{upstream: "https://api.openai.com/v1", path: "/v10/x", want: "https://api.openai.com/v1/v10/x"},
		{upstream: "https://api.openai.com", path: "/v1/models", want: "https://api.openai.com/v1/models"},
		{upstream: "https://me.openai.azure.com/openai", path: "/openai/deployments/d/chat/completions",
			want: "https://me.openai.azure.com/openai/deployments/d/chat/completions"},
	}
	for _, tc := range cases {
		t.Run(tc.upstream+" "+tc.path, func(t *testing.T) {
			u, err := url.Parse(tc.upstream)
			require.NoError(t, err)
			in := httptest.NewRequest(http.MethodGet, tc.path, nil)
			out := in.Clone(in.Context())
			pr := &httputil.ProxyRequest{In: in, Out: out}
			pr.SetURL(UpstreamFor(u, in.URL.Path))
			assert.Equal(t, tc.want, pr.Out.URL.String())
		})
	}
}
