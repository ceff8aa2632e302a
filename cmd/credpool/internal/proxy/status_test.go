// status_test.go tests what the proxy serves itself: /credpool/status,
// /credpool/reset, /metrics and the status page's headers, each under the
// token rule. The other key actions are tested in keyactions_test.go.

package proxy

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusJSON(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	keys := []string{revokedKey, limitedKey, goodKey}
	p := newTestProxy(t, up, keys, "")
	for range 3 {
		code, _ := p.do(t, http.MethodGet, "/v1/models", nil)
		require.Equal(t, http.StatusOK, code)
	}

	code, body := p.do(t, http.MethodGet, "/credpool/status", nil)
	require.Equal(t, http.StatusOK, code)
	for _, k := range keys {
		assert.NotContains(t, body, k, "no key in the status")
		assert.NotContains(t, body, k[:len(k)-4], "nor most of one")
	}
	var whole struct {
		Keys  []map[string]any `json:"keys"`
		Store any              `json:"store"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &whole))
	assert.Nil(t, whole.Store, "no store, null")
	raw := whole.Keys
	require.Len(t, raw, 3)
	for _, k := range raw {
		var fields []string
		for f := range k {
			fields = append(fields, f)
		}
		assert.ElementsMatch(t, []string{"index", "label", "state", "reason", "reset_at", "remaining", "requests", "failures", "strikes"}, fields)
	}

	st := p.status(t, "")
	assert.Equal(t, "dead", string(st[0].State))
	assert.Equal(t, "auth_permanent", *st[0].Reason)
	assert.Nil(t, st[0].ResetAt)
	assert.Equal(t, "exhausted", string(st[1].State))
	assert.Equal(t, "rate_limit", *st[1].Reason)
	require.NotNil(t, st[1].ResetAt)
	assert.Equal(t, "ok", string(st[2].State))
	assert.Nil(t, st[2].Reason)
	assert.Nil(t, st[2].Remaining)
	assert.Equal(t, "sk-…GOOD", st[2].Label)
	for i, s := range st {
		assert.Equal(t, i, s.Index)
		assert.Positive(t, s.Requests)
	}
}

func TestResetNeedsTheToken(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{revokedKey, goodKey}, testToken)
	code, _ := p.do(t, http.MethodGet, "/v1/models", bearer(testToken))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "dead", string(p.status(t, testToken)[0].State))

	code, _ = p.do(t, http.MethodGet, "/credpool/status", nil)
	assert.Equal(t, http.StatusUnauthorized, code, "the status needs the token when one is set")
	code, _ = p.do(t, http.MethodPost, "/credpool/reset?key=0", nil)
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = p.do(t, http.MethodPost, "/credpool/reset?key=0", bearer("wrong-token-0123456789abcdef"))
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Equal(t, "dead", string(p.status(t, testToken)[0].State), "a refused reset changes nothing")

	code, _ = p.do(t, http.MethodGet, "/credpool/reset?key=0", bearer(testToken))
	assert.Equal(t, http.StatusMethodNotAllowed, code, "reset is a POST")
	code, _ = p.do(t, http.MethodPost, "/credpool/reset", bearer(testToken))
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = p.do(t, http.MethodPost, "/credpool/reset?key=7", bearer(testToken))
	assert.Equal(t, http.StatusNotFound, code)

	code, body := p.do(t, http.MethodPost, "/credpool/reset?key=0", bearer(testToken))
	require.Equal(t, http.StatusOK, code, body)
	var s keyStatus
	require.NoError(t, json.Unmarshal([]byte(body), &s))
	assert.Equal(t, "ok", string(s.State))
	assert.Equal(t, "ok", string(p.status(t, testToken)[0].State))
}

func TestResetWithoutTokenOnLoopback(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{revokedKey, goodKey}, "")
	code, _ := p.do(t, http.MethodGet, "/v1/models", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "dead", string(p.status(t, "")[0].State))

	code, body := p.do(t, http.MethodPost, "/credpool/reset?key=0", nil)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "ok", string(p.status(t, "")[0].State))
}

func TestMetricsScrape(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{revokedKey, goodKey}, testToken)
	code, _ := p.do(t, http.MethodGet, "/v1/models", bearer(testToken))
	require.Equal(t, http.StatusOK, code)

	code, _ = p.do(t, http.MethodGet, "/metrics", nil)
	assert.Equal(t, http.StatusUnauthorized, code, "metrics need the token when one is set")
	code, body := p.do(t, http.MethodGet, "/metrics", bearer(testToken))
	require.Equal(t, http.StatusOK, code)
	assert.NotContains(t, body, goodKey)
	assert.NotContains(t, body, revokedKey)

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	keys := families["credpool_keys"]
	require.NotNil(t, keys, "credpool_keys is exported")
	byState := map[string]float64{}
	for _, m := range keys.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		assert.Equal(t, "openai", labels["pool"], "the pool label")
		byState[labels["state"]] = m.GetGauge().GetValue()
	}
	assert.Equal(t, map[string]float64{"ok": 1, "exhausted": 0, "dead": 1, "disabled": 0}, byState, "every state, 0 included")
	assert.Contains(t, families, "credpool_key_state", "per-key series are on")
	assert.Contains(t, families, "go_goroutines")
	for _, name := range []string{"credpool_rechecks_total", "credpool_revived_total"} {
		require.Contains(t, families, name, "exported from the first scrape, without --recheck-every too")
		assert.Zero(t, families[name].GetMetric()[0].GetCounter().GetValue(), name)
	}

	// A disabled key is counted as such, in the pool's gauge and its own.
	code, body = p.do(t, http.MethodPost, "/credpool/disable?key=1", bearer(testToken))
	require.Equal(t, http.StatusOK, code, body)
	code, body = p.do(t, http.MethodGet, "/metrics", bearer(testToken))
	require.Equal(t, http.StatusOK, code)
	families, err = parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	byState = map[string]float64{}
	for _, m := range families["credpool_keys"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "state" {
				byState[l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	assert.Equal(t, map[string]float64{"ok": 0, "exhausted": 0, "dead": 1, "disabled": 1}, byState)
	assert.Contains(t, body, `credpool_key_state{key="sk-…GOOD",pool="openai",state="disabled"} 1`)

	code, _ = p.do(t, http.MethodPost, "/metrics", bearer(testToken))
	assert.Equal(t, http.StatusMethodNotAllowed, code, "/metrics is never forwarded")
	assert.Len(t, up.Requests(), 2)
}

func TestOwnPathsAreNotForwarded(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey}, "")
	for _, path := range []string{"/credpool/nothing", "/credpool/status/x"} {
		code, _ := p.do(t, http.MethodGet, path, nil)
		assert.Equal(t, http.StatusNotFound, code, path)
	}
	code, _ := p.do(t, http.MethodPost, "/credpool/status", nil)
	assert.Equal(t, http.StatusMethodNotAllowed, code)
	assert.Empty(t, up.Requests())
}

func TestPageIsSelfContained(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey}, testToken)
	resp, err := p.Client().Get(p.URL + "/credpool/")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the page holds no data, so it needs no token")
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	csp := resp.Header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'none'")
	assert.Contains(t, csp, "connect-src 'self'")
	assert.Regexp(t, `script-src 'sha256-[A-Za-z0-9+/=]{44}';`, csp)

	page := string(pageHTML)
	for _, external := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`),
		regexp.MustCompile(`(?i)@import|url\(`),
		regexp.MustCompile(`(?i)<script[^>]+src`),
	} {
		assert.NotRegexp(t, external, page, "nothing is loaded from elsewhere")
	}
}

// TestStatusShowsTheStore: with a store, /credpool/status says whether the
// store answers and how long ago it last did.
func TestStatusShowsTheStore(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	path := filepath.Join(t.TempDir(), "state.json")
	store, err := credpool.NewFileStore(path)
	require.NoError(t, err)
	p := startTestProxy(t, up, []string{goodKey}, "", func(c *Config) { c.Store = store })
	st := p.poolStatus(t, "")
	require.NotNil(t, st.Store)
	assert.True(t, st.Store.Up)
	assert.True(t, st.Store.Loaded)
	require.NotNil(t, st.Store.LastSync)
	require.NotNil(t, st.Store.LastSyncAge)
	assert.Less(t, *st.Store.LastSyncAge, 60.0)
}
