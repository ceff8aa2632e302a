package credpool

import (
	"math"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTiersServeLowestFirst: the free keys (tier 0) serve while any of them
// is usable, the paid key (tier 1) only while none is, and the free tier
// takes over again the moment a key of it is back. Every strategy.
func TestTiersServeLowestFirst(t *testing.T) {
	for _, s := range []Strategy{RoundRobin, FillFirst, LeastUsed, Random} {
		t.Run(s.String(), func(t *testing.T) {
			var limited atomic.Bool
			p := newProvider(t, func(key string, _ int) reply {
				if limited.Load() && key != keyC {
					return reply{status: 429, header: map[string]string{"Retry-After": "600"}, body: bodyRateLimit}
				}
				return reply{status: 200, body: "ok"}
			})
			tr := newTransport(t, []string{keyA, keyB, keyC}, WithStrategy(s), WithTiers(0, 0, 1), WithMaxWait(0))
			for range 20 {
				status, _ := get(t, tr, p.URL)
				require.Equal(t, 200, status)
			}
			assert.Zero(t, p.count(keyC), "the paid key waits while a free one is usable")
			if s != FillFirst {
				assert.Positive(t, p.count(keyA))
				assert.Positive(t, p.count(keyB))
			}

			limited.Store(true)
			status, _ := get(t, tr, p.URL) // the free keys cool, one after the other
			require.Equal(t, 200, status)
			before := p.count(keyC)
			assert.Positive(t, before, "overflow to the paid key")

			tr.ResetKey(0)
			limited.Store(false)
			status, _ = get(t, tr, p.URL)
			require.Equal(t, 200, status)
			assert.Equal(t, before, p.count(keyC), "the free tier is back")
		})
	}
}

// TestWeightsAreFractions: RoundRobin sends each key its share of the
// requests, fractions included, within a request or two at any count;
// Random on average.
func TestWeightsAreFractions(t *testing.T) {
	cases := []struct {
		name     string
		strategy Strategy
		weights  []float64
		requests int
		want     []int // requests per key
		slack    int
	}{
		{name: "80/20", strategy: RoundRobin, weights: []float64{0.8, 0.2}, requests: 1000, want: []int{800, 200}, slack: 2},
		{name: "two to one, in fractions", strategy: RoundRobin, weights: []float64{1, 0.5}, requests: 999, want: []int{666, 333}, slack: 2},
		{name: "three keys", strategy: RoundRobin, weights: []float64{0.5, 0.3, 0.2}, requests: 1000, want: []int{500, 300, 200}, slack: 3},
		{name: "a short run", strategy: RoundRobin, weights: []float64{0.8, 0.2}, requests: 10, want: []int{8, 2}, slack: 1},
		{name: "random", strategy: Random, weights: []float64{0.8, 0.2}, requests: 2000, want: []int{1600, 400}, slack: 100},
	}
	keys := []string{keyA, keyB, keyC}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) { return answer(r, 200, "ok"), nil })
			counts := make([]int, len(tc.weights))
			tr := newTransport(t, keys[:len(tc.weights)], WithBase(base), WithStrategy(tc.strategy), WithWeights(tc.weights...))
			for range tc.requests {
				resp, err := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
				require.NoError(t, err)
				resp.Body.Close()
			}
			for i, k := range tr.Keys() {
				counts[i] = int(k.Requests)
			}
			for i := range counts {
				assert.InDelta(t, tc.want[i], counts[i], float64(tc.slack), "key %d: %v", i, counts)
			}
		})
	}
}

// TestWeightsThroughHTTP: weights hold over a real connection, and a key
// that dies hands its share to the others.
func TestWeightsThroughHTTP(t *testing.T) {
	var revoked atomic.Bool
	p := newProvider(t, func(key string, _ int) reply {
		if revoked.Load() && key == keyA {
			return reply{status: 401, body: bodyRevoked}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, []string{keyA, keyB, keyC}, WithWeights(2, 1, 1))
	for range 400 {
		status, _ := get(t, tr, p.URL)
		require.Equal(t, 200, status)
	}
	assert.InDelta(t, 200, p.count(keyA), 2)
	assert.InDelta(t, 100, p.count(keyB), 2)

	revoked.Store(true)
	for range 200 {
		status, _ := get(t, tr, p.URL)
		require.Equal(t, 200, status)
	}
	assert.Equal(t, StateDead, tr.Keys()[0].State)
	assert.InDelta(t, 200, p.count(keyB), 3, "B and C share what is left evenly")
	assert.InDelta(t, 200, p.count(keyC), 3)
}

func TestTiersAndWeightsAreChecked(t *testing.T) {
	cases := []struct {
		name string
		opt  Option
		err  string
	}{
		{name: "tiers", opt: WithTiers(0), err: "credpool: invalid option: WithTiers: 1 values for 2 keys"},
		{name: "weights", opt: WithWeights(1, 1, 1), err: "credpool: invalid option: WithWeights: 3 values for 2 keys"},
		{name: "zero weight", opt: WithWeights(1, 0), err: "credpool: invalid option: WithWeights: weight 0 of key 1 is not positive and finite"},
		{name: "NaN weight", opt: WithWeights(math.NaN(), 1), err: "credpool: invalid option: WithWeights: weight NaN of key 0 is not positive and finite"},
		{name: "infinite weight", opt: WithWeights(1, math.Inf(1)), err: "credpool: invalid option: WithWeights: weight +Inf of key 1 is not positive and finite"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New([]string{keyA, keyB}, tc.opt)
			assert.ErrorIs(t, err, ErrInvalidOption)
			assert.EqualError(t, err, tc.err)
		})
	}
}
