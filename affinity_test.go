package credpool

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// send sends a GET with ctx through tr and returns the response, its body
// closed, or the error.
func send(t *testing.T, tr http.RoundTripper, ctx context.Context, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

func TestPinKeepsARequestOnOneKey(t *testing.T) {
	p := newProvider(t, func(key string, n int) reply {
		switch {
		case key == keyB && n == 3:
			return reply{status: 503, body: "busy"} // the provider's trouble: retried on B
		case key == keyB && n == 5:
			return reply{status: 429, header: map[string]string{"Retry-After": "60"}, body: bodyRateLimit}
		case key == keyC:
			return reply{status: 401, body: bodyRevoked}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, []string{keyA, keyB, keyC}, WithKeyHeader("Credpool-Key"))
	labelB, labelC := tr.Keys()[1].Label, tr.Keys()[2].Label
	onB := Pin(context.Background(), labelB)

	for range 3 {
		resp, err := send(t, tr, onB, p.URL)
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, labelB, resp.Header.Get("Credpool-Key"), "the label of the key that served it")
	}
	assert.Equal(t, []string{keyB, keyB, keyB, keyB}, p.keys(), "a 503 on B is retried on B")

	resp, err := send(t, tr, onB, p.URL)
	require.NoError(t, err)
	assert.Equal(t, 429, resp.StatusCode, "the provider's answer, not another key's")
	assert.Equal(t, labelB, resp.Header.Get("Credpool-Key"))
	assert.Equal(t, 5, p.count(keyB))
	assert.Zero(t, p.count(keyA), "never moved to another key")
	assert.Equal(t, StateExhausted, tr.Keys()[1].State, "the key still pays for its 429")

	_, err = send(t, tr, onB, p.URL)
	var pinned *PinnedKeyError
	require.ErrorAs(t, err, &pinned)
	assert.Equal(t, labelB, pinned.Label)
	assert.Equal(t, StateExhausted, pinned.State)
	assert.Equal(t, ReasonRateLimit, pinned.Reason)
	assert.Equal(t, tr.Keys()[1].ResetAt, pinned.ResetAt)
	assert.Contains(t, err.Error(), "credpool: pinned key "+labelB+" is exhausted (rate_limit) until ")
	assert.Equal(t, 5, p.count(keyB), "nothing sent")

	_, err = send(t, tr, Pin(context.Background(), labelC), p.URL)
	require.NoError(t, err, "C's 401 is handed back")
	_, err = send(t, tr, Pin(context.Background(), labelC), p.URL)
	assert.EqualError(t, err, "credpool: pinned key "+labelC+" is dead (auth_permanent)")

	_, err = send(t, tr, Pin(context.Background(), "sk-…nope"), p.URL)
	assert.EqualError(t, err, `credpool: no key is labelled "sk-…nope"`)
	require.ErrorAs(t, err, &pinned)
	assert.Empty(t, pinned.State)

	resp, err = send(t, tr, context.Background(), p.URL)
	require.NoError(t, err)
	assert.Equal(t, tr.Keys()[0].Label, resp.Header.Get("Credpool-Key"), "unpinned requests rotate as ever")
}

func TestSessionsKeepTheirKeyWhileItIsUsable(t *testing.T) {
	var dead sync.Map // keys revoked so far
	p := newProvider(t, func(key string, _ int) reply {
		if _, ok := dead.Load(key); ok {
			return reply{status: 401, body: bodyRevoked}
		}
		return reply{status: 200, body: "ok"}
	})
	keys := []string{keyA, keyB, keyC}
	tr := newTransport(t, keys, WithKeyHeader("Credpool-Key"))
	keyOf := func(session string) string {
		resp, err := send(t, tr, Session(context.Background(), session), p.URL)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		return resp.Header.Get("Credpool-Key")
	}

	const sessions = 300
	first := make(map[string]string, sessions)
	perKey := map[string]int{}
	for i := range sessions {
		s := fmt.Sprint("conversation-", i)
		first[s] = keyOf(s)
		perKey[first[s]]++
	}
	for _, st := range tr.Keys() {
		assert.Greater(t, perKey[st.Label], sessions/6, "sessions spread over every key: %v", perKey)
	}
	for s, label := range first {
		assert.Equal(t, label, keyOf(s), "session %s keeps its key", s)
	}

	dead.Store(keyB, true)
	labelB := tr.Keys()[1].Label
	for s, label := range first {
		now := keyOf(s)
		if label == labelB {
			assert.NotEqual(t, labelB, now, "session %s moves off the dead key", s)
			assert.Equal(t, now, keyOf(s), "and keeps its new one")
		} else {
			assert.Equal(t, label, now, "session %s, not on the dead key, stays", s)
		}
	}
	assert.Equal(t, StateDead, tr.Keys()[1].State)
}

// Sessions keep to the lowest tier with a usable key, as every request does.
func TestSessionsKeepToTheLowestTier(t *testing.T) {
	p := newProvider(t, revokesKeyA)
	tr := newTransport(t, []string{keyA, keyB, keyC}, WithTiers(0, 0, 1))
	for i := range 40 {
		_, err := send(t, tr, Session(context.Background(), fmt.Sprint("s", i)), p.URL)
		require.NoError(t, err)
	}
	assert.Zero(t, p.count(keyC), "the overflow tier is not used while B serves")
}

// Sessions keep their key across SetKeys, whatever the new order.
func TestSessionsKeepTheirKeyAcrossSetKeys(t *testing.T) {
	p := newProvider(t, nil)
	tr := newTransport(t, []string{keyA, keyB, keyC})
	for i := range 30 {
		_, err := send(t, tr, Session(context.Background(), fmt.Sprint("s", i)), p.URL)
		require.NoError(t, err)
	}
	keys := p.keys()
	require.NoError(t, tr.SetKeys([]string{keyC, keyD, keyB, keyA}))
	for i := range 30 {
		_, err := send(t, tr, Session(context.Background(), fmt.Sprint("s", i)), p.URL)
		require.NoError(t, err)
	}
	after := p.keys()[30:]
	moved := 0
	for i := range 30 {
		if keys[i] != after[i] {
			moved++
			assert.Equal(t, keyD, after[i], "a session moves only to the new key")
		}
	}
	assert.Less(t, moved, 15, "about a quarter move, to the added key")
}
