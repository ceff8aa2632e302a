package credpool

import (
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecheckRevivesOnlyOnSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var reinstated atomic.Bool
		var probes atomic.Int32
		p := newMemProvider(func(key string, _ int) reply {
			if key == keyA && !reinstated.Load() {
				return reply{status: 401, body: bodyRevoked}
			}
			return reply{status: 200, body: "ok"}
		})
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/v1/models" {
				probes.Add(1)
				assert.Equal(t, http.MethodGet, r.Method)
			}
			return p.RoundTrip(r)
		})
		var log syncBuffer
		var changes []StateChange
		tr := newTransport(t, []string{keyA, keyB, keyC}, WithBase(base), WithStrategy(FillFirst),
			WithRecheck(time.Hour, http.MethodGet, "http://provider.test/v1/models"),
			WithLogger(slog.New(slog.NewTextHandler(&log, nil))),
			WithOnStateChange(func(c StateChange) { changes = append(changes, c) }))
		require.NoError(t, tr.DisableKey(2))
		get(t, tr, p.URL)
		require.Equal(t, StateDead, tr.Keys()[0].State)

		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, int32(1), probes.Load(), "one re-check, of the dead key only: never the disabled one")
		assert.Equal(t, StateDead, tr.Keys()[0].State, "a 401 leaves it dead")
		assert.Equal(t, uint64(1), tr.Stats().Rechecks)
		assert.Zero(t, tr.Stats().Revived)

		reinstated.Store(true)
		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, StateOK, tr.Keys()[0].State, "a success revives it")
		assert.Equal(t, Stats{Rechecks: 2, Revived: 1}, Stats{Rechecks: tr.Stats().Rechecks, Revived: tr.Stats().Revived})
		assert.Equal(t, StateChange{Index: 0, Label: tr.Keys()[0].Label, From: StateDead, To: StateOK}, changes[len(changes)-1])

		time.Sleep(3 * time.Hour)
		synctest.Wait()
		assert.Equal(t, int32(2), probes.Load(), "no dead key, no re-check")
		assert.Equal(t, StateDisabled, tr.Keys()[2].State)
		assert.Equal(t, 2, strings.Count(log.String(), "credpool: re-checked a dead key"), "every re-check is logged")
		assert.NotContains(t, log.String(), keyA)
		assert.NotContains(t, log.String(), keyA[len(keyA)-8:])
	})
}

func TestRecheckLeavesADeadKeyDeadOnAnyFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		base roundTripFunc
	}{
		{name: "server error", base: func(r *http.Request) (*http.Response, error) { return answer(r, 503, "busy"), nil }},
		{name: "rate limit", base: func(r *http.Request) (*http.Response, error) { return answer(r, 429, bodyRateLimit), nil }},
		{name: "redirect", base: func(r *http.Request) (*http.Response, error) { return answer(r, 302, ""), nil }},
		{name: "network error", base: func(*http.Request) (*http.Response, error) { return nil, errBoom }},
		{name: "panic", base: func(*http.Request) (*http.Response, error) { panic("base bug") }},
		{name: "no answer", base: func(r *http.Request) (*http.Response, error) { <-r.Context().Done(); return nil, r.Context().Err() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var rechecking atomic.Bool
				p := newMemProvider(revokesKeyA)
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if rechecking.Load() {
						return tc.base(r)
					}
					return p.RoundTrip(r)
				})
				tr := newTransport(t, []string{keyA, keyB}, WithBase(base), WithStrategy(FillFirst),
					WithRecheck(time.Minute, http.MethodHead, "http://provider.test/v1/models"))
				get(t, tr, p.URL)
				require.Equal(t, StateDead, tr.Keys()[0].State)
				rechecking.Store(true)
				time.Sleep(time.Minute + recheckTimeout)
				synctest.Wait()
				assert.Equal(t, StateDead, tr.Keys()[0].State)
				assert.Equal(t, uint64(1), tr.Stats().Rechecks)
			})
		})
	}
}

func TestRecheckIsChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{name: "too often", opts: []Option{WithRecheck(time.Second, "GET", "https://api.test/v1/models")}, want: "under a minute"},
		{name: "relative URL", opts: []Option{WithRecheck(time.Hour, "GET", "/v1/models")}, want: "not an absolute http or https URL"},
		{name: "other scheme", opts: []Option{WithRecheck(time.Hour, "GET", "ftp://api.test/")}, want: "not an absolute"},
		{name: "bad method", opts: []Option{WithRecheck(time.Hour, "GET /", "https://api.test/")}, want: "invalid method"},
		{name: "credentials", opts: []Option{WithRecheck(time.Hour, "GET", "https://user:secret@api.test/")}, want: "holds credentials"},
		{name: "host the keys are not for", opts: []Option{WithHosts("api.test"), WithRecheck(time.Hour, "GET", "https://evil.test/v1/models")},
			want: "evil.test is not a host the keys are sent to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New([]string{keyA}, tc.opts...)
			require.ErrorIs(t, err, ErrInvalidOption)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "secret")
		})
	}
}

// A re-check carries the key as the preset sends it on every attempt, and
// the headers the provider needs besides (Anthropic's anthropic-version).
func TestRecheckSendsTheKeyAsThePresetDoes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		preset Option
		want   http.Header
	}{
		{name: "no preset", preset: WithMaxRetries(3), want: http.Header{"Authorization": {"Bearer " + keyA}}},
		{name: "Anthropic", preset: Anthropic(), want: http.Header{"X-Api-Key": {keyA}, "Anthropic-Version": {"2023-06-01"}}},
		{name: "Gemini", preset: Gemini(), want: http.Header{"X-Goog-Api-Key": {keyA}}},
		{name: "Anthropic then GitHub", preset: optionFunc(func(c *config) { Anthropic().apply(c); GitHub().apply(c) }),
			want: http.Header{"Authorization": {"Bearer " + keyA}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var rechecks []http.Header
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if r.URL.Path == "/v1/models" {
						rechecks = append(rechecks, r.Header.Clone())
						return answer(r, 200, "{}"), nil
					}
					return answer(r, 401, bodyRevoked), nil
				})
				tr := newTransport(t, []string{keyA}, WithBase(base), tc.preset,
					WithRecheck(time.Minute, http.MethodGet, "http://provider.test/v1/models"))
				get(t, tr, "http://provider.test/v1/chat")
				require.Equal(t, StateDead, tr.Keys()[0].State)
				time.Sleep(time.Minute)
				synctest.Wait()
				require.Len(t, rechecks, 1)
				assert.Equal(t, tc.want, rechecks[0])
				assert.Equal(t, StateOK, tr.Keys()[0].State)
			})
		})
	}
}
