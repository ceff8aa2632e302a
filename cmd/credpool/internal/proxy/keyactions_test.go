// keyactions_test.go tests the operator's key actions through real HTTP:
// POST /credpool/disable, /credpool/enable and /credpool/reset, what each
// does to the keys that reach the upstream, their refusals, and their logs.

package proxy

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// act posts a key action and returns the key's new status, requiring a 200.
func (p *testProxy) act(t *testing.T, action string, index int, token string) keyStatus {
	t.Helper()
	h := map[string]string{}
	if token != "" {
		h = bearer(token)
	}
	code, body := p.do(t, http.MethodPost, fmt.Sprintf("/credpool/%s?key=%d", action, index), h)
	require.Equal(t, http.StatusOK, code, body)
	var s keyStatus
	require.NoError(t, json.Unmarshal([]byte(body), &s))
	return s
}

// keysSeen returns the keys that the upstream received since its first from
// requests, in order.
func keysSeen(up *fakeapi.Upstream, from int) []string {
	var out []string
	for _, s := range up.Requests()[from:] {
		out = append(out, strings.TrimPrefix(s.Header.Get("Authorization"), "Bearer "))
	}
	return out
}

// TestDisabledKeyNeverReachesUpstream: a disabled key gets no request until
// it is enabled, a reset leaves it disabled, and once enabled it serves
// again.
func TestDisabledKeyNeverReachesUpstream(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey, good2Key}, testToken)
	send := func(n int) []string {
		t.Helper()
		from := len(up.Requests())
		for range n {
			code, body := p.do(t, http.MethodGet, "/v1/models", bearer(testToken))
			require.Equal(t, http.StatusOK, code, body)
		}
		return keysSeen(up, from)
	}
	require.Contains(t, send(4), goodKey, "both keys serve at first")

	s := p.act(t, "disable", 0, testToken)
	assert.Equal(t, keyStatus{Index: 0, Label: "sk-…GOOD", State: credpool.StateDisabled, Requests: s.Requests}, s,
		"the answer is the key's new status, with no reason: an operator's decision")
	before := s.Requests
	assert.NotContains(t, send(6), goodKey, "no request reaches the upstream with the disabled key")
	assert.Equal(t, p.act(t, "disable", 0, testToken).State, credpool.StateDisabled, "disabling twice is harmless")

	assert.Equal(t, credpool.StateDisabled, p.act(t, "reset", 0, testToken).State, "a reset leaves a disabled key disabled")
	assert.NotContains(t, send(6), goodKey, "nor does it after the reset")
	st := p.status(t, testToken)
	assert.Equal(t, credpool.StateDisabled, st[0].State)
	assert.Equal(t, before, st[0].Requests, "not one attempt with it")

	assert.Equal(t, credpool.StateOK, p.act(t, "enable", 0, testToken).State)
	assert.Contains(t, send(4), goodKey, "enabled, it serves again")
	assert.Equal(t, credpool.StateOK, p.act(t, "enable", 1, testToken).State, "enabling a key that is not disabled changes nothing")
}

// TestDisablingEveryKey: with every key disabled, a request gets the
// proxy's 503, which says the keys are disabled, and reaches nobody.
func TestDisablingEveryKey(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey, good2Key}, "")
	p.act(t, "disable", 0, "")
	p.act(t, "disable", 1, "")
	code, body := p.do(t, http.MethodGet, "/v1/models", nil)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "no_usable_key")
	assert.Contains(t, body, "2 disabled")
	assert.Empty(t, up.Requests())

	p.act(t, "enable", 1, "")
	code, body = p.do(t, http.MethodGet, "/v1/models", nil)
	assert.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, []string{good2Key}, keysSeen(up, 0))
}

// TestDisableADeadKey: a dead key can be disabled too, and then a reset does
// not revive it; enabling it gives it a clean past, as a reset would.
func TestDisableADeadKey(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{revokedKey, goodKey}, "")
	code, _ := p.do(t, http.MethodGet, "/v1/models", nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, credpool.StateDead, p.status(t, "")[0].State)

	s := p.act(t, "disable", 0, "")
	assert.Equal(t, credpool.StateDisabled, s.State)
	assert.Nil(t, s.Reason, "the decision outranks the key's past")
	assert.Equal(t, credpool.StateDisabled, p.act(t, "reset", 0, "").State)
	s = p.act(t, "enable", 0, "")
	assert.Equal(t, credpool.StateOK, s.State)
	assert.Nil(t, s.Reason)
}

// TestKeyActionsRefused: each action needs the client token when one is
// set, a POST, and the index of a key; a refused action changes nothing.
func TestKeyActionsRefused(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey, good2Key}, testToken)
	p.act(t, "disable", 1, testToken)
	cases := []struct {
		name, method, query string
		header              map[string]string
		want                int
		code                string // the error's code
	}{
		{"no token", http.MethodPost, "?key=0", nil, http.StatusUnauthorized, "invalid_client_token"},
		{"wrong token", http.MethodPost, "?key=0", bearer("wrong-token-0123456789abcdef"), http.StatusUnauthorized, "invalid_client_token"},
		{"wrong token as an API key", http.MethodPost, "?key=0", map[string]string{"X-Api-Key": "not-the-token-0123456789"}, http.StatusUnauthorized, "invalid_client_token"},
		{"GET", http.MethodGet, "?key=0", bearer(testToken), http.StatusMethodNotAllowed, "method_not_allowed"},
		{"no key", http.MethodPost, "", bearer(testToken), http.StatusBadRequest, "bad_request"},
		{"key not a number", http.MethodPost, "?key=first", bearer(testToken), http.StatusBadRequest, "bad_request"},
		{"key by label", http.MethodPost, "?key=sk-…GOOD", bearer(testToken), http.StatusBadRequest, "bad_request"},
		{"no such index", http.MethodPost, "?key=2", bearer(testToken), http.StatusNotFound, "no_such_key"},
		{"negative index", http.MethodPost, "?key=-1", bearer(testToken), http.StatusNotFound, "no_such_key"},
	}
	for _, action := range []string{"disable", "enable", "reset"} {
		for _, c := range cases {
			t.Run(action+"/"+c.name, func(t *testing.T) {
				code, body := p.do(t, c.method, "/credpool/"+action+c.query, c.header)
				assert.Equal(t, c.want, code, body)
				var e apiError
				require.NoError(t, json.Unmarshal([]byte(body), &e), body)
				assert.Equal(t, c.code, e.Error.Code)
				if c.want == http.StatusBadRequest {
					assert.Contains(t, e.Error.Message, action+" needs ?key=<index>")
				}
				for _, k := range []string{goodKey, good2Key, testToken} {
					assert.NotContains(t, body, k)
				}
			})
		}
	}
	st := p.status(t, testToken)
	assert.Equal(t, credpool.StateOK, st[0].State, "a refused disable changes nothing")
	assert.Equal(t, credpool.StateDisabled, st[1].State, "nor a refused enable")
	assert.Empty(t, up.Requests())
}

// TestPinnedToADisabledKey: a request pinned to a disabled key is refused
// with a code of its own, and never moved to another key.
func TestPinnedToADisabledKey(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey, good2Key}, "")
	p.act(t, "disable", 0, "")
	code, _, body := p.send(t, http.MethodGet, "/v1/models", map[string]string{KeyHeader: "sk-…GOOD"})
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body, "pinned_key_disabled")
	assert.Contains(t, body, "sk-…GOOD is disabled")
	assert.Empty(t, up.Requests())
}

// TestKeyActionsAreLogged: every action is logged at Info with the key's
// label, its index and who asked; never the key.
func TestKeyActionsAreLogged(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	var log lockedBuffer
	p := startTestProxy(t, up, []string{goodKey, good2Key}, "", func(c *Config) { c.Log = slog.New(slog.NewTextHandler(&log, nil)) })
	p.act(t, "disable", 0, "")
	p.act(t, "reset", 0, "")
	p.act(t, "enable", 0, "")

	var lines []string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "on request") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 3, log.String())
	for i, msg := range []string{"key disabled on request", "key reset on request", "key enabled on request"} {
		assert.Contains(t, lines[i], "level=INFO")
		assert.Contains(t, lines[i], `msg="credpool proxy: `+msg+`"`)
		assert.Contains(t, lines[i], "key=sk-…GOOD index=0")
		assert.Regexp(t, `remote=127\.0\.0\.1:\d+`, lines[i])
	}
	assert.Contains(t, lines[1], "state=disabled", "the reset left it disabled")
	for _, k := range []string{goodKey, good2Key, goodKey[:len(goodKey)-4]} {
		assert.NotContains(t, log.String(), k)
	}
}

// lockedBuffer is a strings.Builder safe for the proxy's writes and the
// test's reads at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write implements io.Writer.
func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
