// naive_test.go tests the naive pool on its own, against a stub provider:
// round robin, a cooldown for any failure, a bounded number of tries, and
// no waiting.

package demo

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stubProvider answers each key with a fixed status (200 when not listed),
// and records the keys it saw.
type stubProvider struct {
	status map[string]int
	seen   []string
}

func (s *stubProvider) RoundTrip(req *http.Request) (*http.Response, error) {
	key := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	s.seen = append(s.seen, key)
	if req.Body != nil {
		if _, err := io.ReadAll(req.Body); err != nil {
			return nil, err
		}
	}
	status := s.status[key]
	if status == 0 {
		status = http.StatusOK
	}
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

func TestNaivePool(t *testing.T) {
	keys := []string{"k0", "k1", "k2", "k3", "k4"}
	tests := []struct {
		name   string
		status map[string]int
		at     []time.Duration // one request at each moment
		seen   []string        // keys the provider saw, in order
		codes  []int           // what each request got; 0 for errAllCooling
	}{
		{"round robin", nil, []time.Duration{0, 0, 0, 0, 0, 0},
			[]string{"k0", "k1", "k2", "k3", "k4", "k0"}, []int{200, 200, 200, 200, 200, 200}},
		{"a failure moves on to the next key, and cools the key",
			map[string]int{"k0": 401}, []time.Duration{0, 0, 0, 0, 0},
			[]string{"k0", "k1", "k2", "k3", "k4", "k1"}, []int{200, 200, 200, 200, 200}},
		{"a cooled key is skipped for five minutes, then fails again",
			map[string]int{"k0": 401},
			[]time.Duration{0, 4 * time.Minute, 4 * time.Minute, 4 * time.Minute, 4 * time.Minute, naiveCooldown, naiveCooldown, naiveCooldown, naiveCooldown},
			[]string{"k0", "k1", "k2", "k3", "k4", "k1", "k2", "k3", "k4", "k0", "k1"},
			[]int{200, 200, 200, 200, 200, 200, 200, 200, 200}},
		{"any failure cools: a 529 as a 401",
			map[string]int{"k0": 529, "k1": 500, "k2": 429}, []time.Duration{0, 0},
			[]string{"k0", "k1", "k2", "k3", "k4"}, []int{200, 200}},
		{"four tries at most, then the last failure",
			map[string]int{"k0": 529, "k1": 529, "k2": 529, "k3": 529}, []time.Duration{0},
			[]string{"k0", "k1", "k2", "k3"}, []int{529}},
		{"every key cooling: fails at once, without waiting",
			map[string]int{"k0": 503, "k1": 503, "k2": 503, "k3": 503, "k4": 503}, []time.Duration{0, 0, time.Minute},
			[]string{"k0", "k1", "k2", "k3", "k4"}, []int{503, 503, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := &stubProvider{status: tt.status}
			clk := new(stepClock)
			var log changeLog
			pool := newNaivePool(keys, stub, clk, log.add)
			var codes []int
			for _, at := range tt.at {
				clk.set(at)
				req, err := http.NewRequest(http.MethodPost, "http://provider.test/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
				require.NoError(t, err)
				resp, err := pool.RoundTrip(req)
				if err != nil {
					require.ErrorIs(t, err, errAllCooling)
					codes = append(codes, 0)
					continue
				}
				resp.Body.Close()
				codes = append(codes, resp.StatusCode)
			}
			assert.Equal(t, tt.seen, stub.seen)
			assert.Equal(t, tt.codes, codes)
		})
	}
}

func TestNaivePoolReportsCooldowns(t *testing.T) {
	stub := &stubProvider{status: map[string]int{"k0": 401}}
	clk := new(stepClock)
	var log changeLog
	pool := newNaivePool([]string{"k0", "k1"}, stub, clk, log.add)
	clk.set(time.Hour)
	req, err := http.NewRequest(http.MethodGet, "http://provider.test/", nil)
	require.NoError(t, err)
	resp, err := pool.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, []change{
		{key: 0, at: time.Hour, state: credpool.StateExhausted},
		{key: 0, at: time.Hour + naiveCooldown, state: credpool.StateOK},
	}, log.sorted())
}

func TestNaivePoolNetworkError(t *testing.T) {
	clk := new(stepClock)
	var log changeLog
	boom := errors.New("connection refused")
	pool := newNaivePool([]string{"k0"}, roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, boom }), clk, log.add)
	req, err := http.NewRequest(http.MethodGet, "http://provider.test/", nil)
	require.NoError(t, err)
	_, err = pool.RoundTrip(req)
	assert.ErrorIs(t, err, boom, "the last failure, when it is an error")
	_, err = pool.RoundTrip(req)
	assert.ErrorIs(t, err, errAllCooling, "and the key cools for it")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
