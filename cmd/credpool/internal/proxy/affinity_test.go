package proxy

import (
	"net/http"
	"testing"

	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAffinityHeaders(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey, good2Key, limitedKey}, "")

	code, h, _ := p.send(t, http.MethodGet, "/v1/models", nil)
	require.Equal(t, http.StatusOK, code)
	first := h.Get(KeyHeader)
	require.NotEmpty(t, first, "every response names its key")
	assert.NotContains(t, first, "0000000000000000", "by label, never the key")

	// Pinned: every request goes with the key the label names, and the
	// affinity headers stay here.
	for range 4 {
		code, h, _ = p.send(t, http.MethodGet, "/v1/models", map[string]string{KeyHeader: first})
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, first, h.Get(KeyHeader))
	}
	seen := up.Requests()
	for _, s := range seen[len(seen)-4:] {
		assert.Equal(t, seen[0].Header.Get("Authorization"), s.Header.Get("Authorization"), "one key")
		assert.Empty(t, s.Header.Get(KeyHeader), "not sent upstream")
		assert.Empty(t, s.Header.Get(SessionHeader), "not sent upstream")
	}

	code, _, body := p.send(t, http.MethodGet, "/v1/models", map[string]string{KeyHeader: "sk-…nope"})
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "unknown_key")

	// A pinned key that is rate limited: the provider's 429, then 503 with
	// Retry-After, never another key.
	limited := "sk-…LIMT"
	code, _, _ = p.send(t, http.MethodGet, "/v1/models", map[string]string{KeyHeader: limited})
	assert.Equal(t, http.StatusTooManyRequests, code)
	code, h, body = p.send(t, http.MethodGet, "/v1/models", map[string]string{KeyHeader: limited})
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "pinned_key_exhausted")
	assert.NotEmpty(t, h.Get("Retry-After"))

	// A session keeps its key.
	_, h, _ = p.send(t, http.MethodGet, "/v1/models", map[string]string{SessionHeader: "conversation-1"})
	key := h.Get(KeyHeader)
	for range 5 {
		_, h, _ = p.send(t, http.MethodGet, "/v1/models", map[string]string{SessionHeader: "conversation-1"})
		assert.Equal(t, key, h.Get(KeyHeader))
	}
}
