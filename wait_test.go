package credpool

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests of waiting run inside synctest.Test, on its fake clock, with the
// provider in memory: time moves only when every goroutine of the test waits
// for it, and then at once to the next timer, so a 5 s cooldown takes no time
// and every elapsed time is exact.

func TestWaitsForCoolingKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newMemProvider(func(_ string, n int) reply {
			if n == 1 {
				return reply{status: 429, header: map[string]string{"Retry-After": "5"}, body: bodyRateLimit}
			}
			return reply{status: 200, body: "ok"}
		})
		tr := newTransport(t, []string{keyA}, WithBase(p), WithMaxWait(10*time.Second))
		start := time.Now()
		status, _ := get(t, tr, p.URL)
		assert.Equal(t, 200, status)
		assert.Equal(t, 5*time.Second, time.Since(start), "waited for the cooldown's end, and no longer")
		assert.Equal(t, Stats{Attempts: 2, Failures: map[Reason]uint64{ReasonRateLimit: 1}, Rotations: 1, Waits: 1, Waited: 5 * time.Second}, tr.Stats())
		assert.Len(t, p.keys(), 2)
	})
}

func TestDoesNotWaitPastMaxWaitOrDeadline(t *testing.T) {
	limited := func(string, int) reply {
		return reply{status: 429, header: map[string]string{"Retry-After": "2"}, body: bodyRateLimit}
	}
	cases := []struct {
		name    string
		maxWait time.Duration
		timeout time.Duration // of the request's context; 0 for none
	}{
		{name: "max wait", maxWait: time.Second},
		{name: "deadline", maxWait: time.Minute, timeout: time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newMemProvider(limited)
				tr := newTransport(t, []string{keyA}, WithBase(p), WithMaxWait(tc.maxWait))
				ctx := context.Background()
				if tc.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				start := time.Now()
				resp, err := tr.RoundTrip(httptestRequest(t, p.URL).WithContext(ctx))
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, 429, resp.StatusCode, "the provider's answer, now")
				assert.Zero(t, time.Since(start), "no sleeping only to fail")
			})
		})
	}
}

func TestCancelEndsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newMemProvider(func(string, int) reply {
			return reply{status: 429, header: map[string]string{"Retry-After": "5"}, body: bodyRateLimit}
		})
		tr := newTransport(t, []string{keyA}, WithBase(p))
		get(t, tr, p.URL) // cools the only key for 5 s, then waits it out once

		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		_, err := tr.RoundTrip(httptestRequest(t, p.URL).WithContext(ctx))
		assert.ErrorIs(t, err, context.Canceled)
		assert.True(t, strings.HasPrefix(err.Error(), "credpool: "), err.Error())
		assert.Equal(t, time.Second, time.Since(start))
	})
}

func TestCancelEndsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newMemProvider(func(string, int) reply { return reply{status: 503, body: "busy"} })
		tr := newTransport(t, []string{keyA}, WithBase(p),
			WithBackoff(func() backoff.BackOff { return backoff.NewConstantBackOff(5 * time.Second) }))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		resp, err := tr.RoundTrip(httptestRequest(t, p.URL).WithContext(ctx))
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, context.Canceled)
		assert.EqualError(t, err, "credpool: backing off: context canceled")
		assert.Equal(t, time.Second, time.Since(start))
	})
}

// TestWaitingHasOneBudget: a request that meets cooling keys one after
// another waits no more than WithMaxWait in all, not WithMaxWait each time,
// then gets the provider's last response. (Measured before: one dead key and
// one rate-limited key kept a request without a deadline waiting five times
// over.)
func TestWaitingHasOneBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newMemProvider(func(key string, _ int) reply {
			if key == keyA {
				return reply{status: 401, body: bodyRevoked}
			}
			return reply{status: 429, header: map[string]string{"Retry-After": "10"}, body: bodyRateLimit}
		})
		const budget = 30 * time.Second
		tr := newTransport(t, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst), WithMaxWait(budget))
		start := time.Now()
		status, _ := get(t, tr, p.URL)
		assert.Equal(t, 429, status, "the provider's last word")
		// keyB cools 10 s, then 20 s (a strike), then 40 s: the request
		// waits the first two, 30 s in all, and not the third.
		assert.Equal(t, budget, tr.Stats().Waited, "waited in all")
		assert.Equal(t, budget, time.Since(start), "one budget, not one per wait")
	})
}

func TestNoUsableKey(t *testing.T) {
	p := newProvider(t, func(string, int) reply { return reply{status: 401, body: bodyRevoked} })
	tr := newTransport(t, []string{keyA, keyB})

	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 401, status, "the last upstream response is handed back")

	_, err := (&http.Client{Transport: tr}).Get(p.URL)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNoKeys)
	var nk *NoKeysError
	require.ErrorAs(t, err, &nk)
	assert.Equal(t, NoKeysError{Dead: 2}, *nk)
	assert.Contains(t, err.Error(), "credpool: no usable key (0 ok, 0 exhausted, 2 dead)")
	assert.Len(t, p.keys(), 2, "no request is ever sent without a key, nor to a dead key")
	for _, k := range p.keys() {
		assert.NotEmpty(t, k)
	}
}

func TestNoKeysErrorReportsSoonestReset(t *testing.T) {
	p := newProvider(t, func(key string, _ int) reply {
		return reply{status: 429, header: map[string]string{"Retry-After": map[string]string{keyA: "600", keyB: "300"}[key]}, body: bodyRateLimit}
	})
	tr := newTransport(t, []string{keyA, keyB}, WithMaxWait(0))
	before := time.Now()
	get(t, tr, p.URL)
	_, err := tr.RoundTrip(httptestRequest(t, p.URL))
	var nk *NoKeysError
	require.ErrorAs(t, err, &nk)
	assert.Equal(t, 2, nk.Exhausted)
	assert.WithinDuration(t, before.Add(5*time.Minute), nk.SoonestReset, 2*time.Second)
}

func TestServerRetryAfterLongerThanMaxWaitHandsBack(t *testing.T) {
	p := newProvider(t, func(string, int) reply {
		return reply{status: 503, header: map[string]string{"Retry-After": "3600"}, body: "maintenance"}
	})
	tr := newTransport(t, []string{keyA, keyB}, WithMaxWait(time.Second))
	status, body := get(t, tr, p.URL)
	assert.Equal(t, 503, status)
	assert.Equal(t, "maintenance", body)
	assert.Len(t, p.keys(), 1)
}

func TestBackoffStopEndsRetries(t *testing.T) {
	p := newProvider(t, func(string, int) reply { return reply{status: 500, body: "x"} })
	tr := newTransport(t, []string{keyA}, WithBackoff(func() backoff.BackOff { return &backoff.StopBackOff{} }))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 500, status)
	assert.Len(t, p.keys(), 1)
}
