// helpers_test.go has what the tests share: goleak in TestMain, the fake
// upstream of internal/fakeapi (shared with the command's tests), and a
// proxy in front of it on loopback.

package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The made-up keys, by short names: the tests use them on almost every
// line that sends a request.
const (
	goodKey    = fakeapi.GoodKey
	good2Key   = fakeapi.Good2Key
	revokedKey = fakeapi.RevokedKey
	limitedKey = fakeapi.LimitedKey
	clientKey  = fakeapi.ClientKey
	testToken  = fakeapi.Token
)

// testProxy is a proxy on a loopback httptest server.
type testProxy struct {
	*httptest.Server
	srv *Server // the proxy it serves
}

// newTestProxy starts a proxy in front of up with keys; token is the client
// token ("" for none). Its backoff is short and its connections are its own.
func newTestProxy(t *testing.T, up *fakeapi.Upstream, keys []string, token string) *testProxy {
	t.Helper()
	return startTestProxy(t, up, keys, token, nil)
}

// startTestProxy is newTestProxy with a change to its configuration (nil
// for none). The configuration is what the proxy command makes of
// "--upstream <up> --listen 127.0.0.1:0 --preset openai".
func startTestProxy(t *testing.T, up *fakeapi.Upstream, keys []string, token string, tweak func(*Config)) *testProxy {
	t.Helper()
	u, err := url.Parse(up.URL)
	require.NoError(t, err)
	base := http.DefaultTransport.(*http.Transport).Clone()
	cfg := Config{
		Upstream: u,
		Options: []credpool.Option{
			credpool.WithReplayBudget(64 << 20), // the default --replay-budget
			credpool.WithBackoff(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }),
		},
		Hosts:    []string{u.Host},
		Name:     "openai",
		Token:    token,
		Loopback: true,
		Log:      fakeapi.DiscardLogger(),
		base:     base,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := New(cfg, keys)
	require.NoError(t, err)
	srv := httptest.NewServer(p)
	t.Cleanup(func() {
		srv.Close()
		p.Close()
		base.CloseIdleConnections()
	})
	return &testProxy{Server: srv, srv: p}
}

// do sends a request to the proxy with the given headers and returns the
// status and body.
func (p *testProxy) do(t *testing.T, method, path string, header map[string]string) (int, string) {
	t.Helper()
	code, _, body := p.send(t, method, path, header)
	return code, body
}

// send is do, returning the response's headers too.
func (p *testProxy) send(t *testing.T, method, path string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, p.URL+path, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := p.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

// status reads /credpool/status.
func (p *testProxy) status(t *testing.T, token string) []keyStatus {
	return p.poolStatus(t, token).Keys
}

// poolStatus reads /credpool/status whole.
func (p *testProxy) poolStatus(t *testing.T, token string) poolStatus {
	t.Helper()
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	code, body := p.do(t, http.MethodGet, "/credpool/status", h)
	require.Equal(t, http.StatusOK, code, body)
	var out poolStatus
	require.NoError(t, json.NewDecoder(bytes.NewReader([]byte(body))).Decode(&out))
	return out
}

// bearer is an Authorization header.
func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}
