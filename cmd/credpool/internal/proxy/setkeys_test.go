// setkeys_test.go tests Server.SetKeys, the reload of the keys: the
// scrubber knows a key as soon as the pool may send it and long after the
// pool has dropped it, and a refused set changes nothing.

package proxy

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoed sends a request pinned to the key labelled label to the upstream's
// /v1/echo-key (query: "" or "?slow"), and returns the status and body.
func echoed(t *testing.T, p *testProxy, label, query string) (int, string) {
	t.Helper()
	return p.do(t, http.MethodGet, "/v1/echo-key"+query, map[string]string{KeyHeader: label})
}

// assertScrubbed checks that a 400 from /v1/echo-key quotes the key by its
// label only, in every form the upstream wrote it. Bodies are 32 KiB:
// assert.Contains would print them whole.
func assertScrubbed(t *testing.T, code int, body, key, label string) {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, code, "the upstream's echo of the key")
	for _, form := range []string{key, url.QueryEscape(key), key[len("sk-"):]} {
		assert.False(t, strings.Contains(body, form), "the key reached the client")
	}
	assert.True(t, strings.Contains(body, "Key "+label+" may not use this endpoint (key="+label+")"), "its label takes its place")
}

// TestSetKeysScrubsAddedAndRemovedKeys: a key SetKeys adds is scrubbed from
// the errors it gets; a key it removes is still scrubbed from the answer to
// an attempt sent before, and after later reloads too.
func TestSetKeysScrubsAddedAndRemovedKeys(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	var logs lockedBuffer
	p := startTestProxy(t, up, []string{goodKey}, "", func(c *Config) { c.Log = slog.New(slog.NewTextHandler(&logs, nil)) })

	// Added: the new key serves, and its echo is scrubbed.
	require.NoError(t, p.srv.SetKeys([]string{goodKey, good2Key}))
	code, body := echoed(t, p, "sk-…GD02", "")
	assertScrubbed(t, code, body, good2Key, "sk-…GD02")

	// Removed while its request is in flight: the answer still comes back
	// scrubbed, though the pool no longer has the key.
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, body := echoed(t, p, "sk-…GD02", "?slow")
		assertScrubbed(t, code, body, good2Key, "sk-…GD02")
	}()
	require.Eventually(t, func() bool { return len(up.Requests()) == 2 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, p.srv.SetKeys([]string{goodKey}))
	up.Release()
	<-done

	// Two reloads later, the scrubber still knows it.
	require.NoError(t, p.srv.SetKeys([]string{goodKey, revokedKey}))
	require.NoError(t, p.srv.SetKeys([]string{revokedKey, goodKey}))
	assert.Equal(t, "sk-…GD02 sk-…GOOD sk-…REVK", p.srv.scrub.Load().String(good2Key+" "+goodKey+" "+revokedKey))
	code, body = echoed(t, p, "sk-…GOOD", "")
	assertScrubbed(t, code, body, goodKey, "sk-…GOOD")

	out := logs.String()
	assert.Contains(t, out, `msg="credpool: keys replaced" keys=2 added=[sk-…GD02] removed=[]`)
	assert.Contains(t, out, `msg="credpool: keys replaced" keys=1 added=[] removed=[sk-…GD02]`)
	for _, k := range []string{goodKey, good2Key, revokedKey} {
		assert.NotContains(t, out, k)
	}
}

// TestSetKeysScrubberKnowsNewKeysFirst: the scrubber made for a swap knows
// the new keys before the pool has labelled them, by a label that hides
// them, and the keys that stay by theirs.
func TestSetKeysScrubberKnowsNewKeysFirst(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := newTestProxy(t, up, []string{goodKey}, "")
	s := p.srv.scrubberFor([]string{goodKey, good2Key})
	assert.Equal(t, "sk-…GOOD "+pendingLabel, s.String(goodKey+" "+good2Key))
}

// TestSetKeysRefusedChangesNothing: a bad key, or a per-key option that no
// longer fits the count, is refused; the pool and the scrubber stay as they
// were, and the error never shows a key.
func TestSetKeysRefusedChangesNothing(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := startTestProxy(t, up, []string{goodKey, good2Key}, "", func(c *Config) {
		c.Options = append(c.Options, credpool.WithTiers(0, 1))
	})
	before := p.srv.scrub.Load()
	labels := func() []string {
		var out []string
		for _, k := range p.status(t, "") {
			out = append(out, k.Label+" "+string(k.State))
		}
		return out
	}
	want := []string{"sk-…GOOD ok", "sk-…GD02 ok"}

	const spaced = "sk-test-has a-space-000000000-SPCE"
	err := p.srv.SetKeys([]string{goodKey, spaced}, credpool.WithTiers(0, 0))
	require.ErrorIs(t, err, credpool.ErrInvalidKey)
	assert.Contains(t, err.Error(), "key 1 has a space")
	assert.NotContains(t, err.Error(), "has a-space", "the error never shows the key")
	assert.Same(t, before, p.srv.scrub.Load())
	assert.Equal(t, want, labels())

	err = p.srv.SetKeys([]string{goodKey, good2Key, revokedKey})
	require.ErrorIs(t, err, credpool.ErrInvalidOption)
	assert.Contains(t, err.Error(), "WithTiers: 2 values for 3 keys")
	assert.Same(t, before, p.srv.scrub.Load())
	assert.Equal(t, want, labels())

	require.NoError(t, p.srv.SetKeys([]string{good2Key, goodKey}), "the same count fits the tiers kept")
	assert.Equal(t, []string{"sk-…GD02 ok", "sk-…GOOD ok"}, labels())
	code, body := p.do(t, http.MethodGet, "/v1/models", nil)
	assert.Equal(t, http.StatusOK, code, body)
}
