package credpool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVerdicts sends one request whose first key meets the given reply, and
// checks where that key ends up and what the caller gets.
func TestVerdicts(t *testing.T) {
	cases := []struct {
		name       string
		reply      reply
		state      State
		reason     Reason
		cooldown   time.Duration // expected reset in, ±2 s; 0 when none
		wantStatus int           // what the caller gets
		secondKey  bool          // whether the request moved to keyB
	}{
		{
			name:       "401 invalid_api_key kills",
			reply:      reply{status: 401, body: bodyInvalidKey},
			state:      StateDead,
			reason:     ReasonAuthPermanent,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "401 account_deactivated kills",
			reply:      reply{status: 401, body: bodyDeactivated},
			state:      StateDead,
			reason:     ReasonAuthPermanent,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "403 token_revoked kills",
			reply:      reply{status: 403, body: bodyRevoked},
			state:      StateDead,
			reason:     ReasonAuthPermanent,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "401 deactivated phrase kills",
			reply:      reply{status: 401, body: `{"message":"This key has been deactivated"}`},
			state:      StateDead,
			reason:     ReasonAuthPermanent,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "401 unknown cools 5m",
			reply:      reply{status: 401, body: `{"error":"unauthorized"}`},
			state:      StateExhausted,
			reason:     ReasonAuth,
			cooldown:   5 * time.Minute,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "403 unknown cools 5m",
			reply:      reply{status: 403, body: `forbidden`},
			state:      StateExhausted,
			reason:     ReasonAuth,
			cooldown:   5 * time.Minute,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "402 billing cools 1h",
			reply:      reply{status: 402, body: `{"error":{"message":"Insufficient Balance"}}`},
			state:      StateExhausted,
			reason:     ReasonBilling,
			cooldown:   time.Hour,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "429 insufficient_quota is billing",
			reply:      reply{status: 429, body: bodyQuota},
			state:      StateExhausted,
			reason:     ReasonBilling,
			cooldown:   time.Hour,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "400 credit balance is billing",
			reply:      reply{status: 400, body: bodyCredit},
			state:      StateExhausted,
			reason:     ReasonBilling,
			cooldown:   time.Hour,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "429 default 60s",
			reply:      reply{status: 429, body: bodyRateLimit},
			state:      StateExhausted,
			reason:     ReasonRateLimit,
			cooldown:   time.Minute,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "429 Retry-After seconds",
			reply:      reply{status: 429, header: map[string]string{"Retry-After": "120"}, body: bodyRateLimit},
			state:      StateExhausted,
			reason:     ReasonRateLimit,
			cooldown:   2 * time.Minute,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "429 Retry-After fractional",
			reply:      reply{status: 429, header: map[string]string{"Retry-After": "90.5"}, body: bodyRateLimit},
			state:      StateExhausted,
			reason:     ReasonRateLimit,
			cooldown:   90 * time.Second,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "429 retry-after-ms",
			reply:      reply{status: 429, header: map[string]string{"Retry-After-Ms": "45000"}, body: bodyRateLimit},
			state:      StateExhausted,
			reason:     ReasonRateLimit,
			cooldown:   45 * time.Second,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name: "429 Retry-After date",
			reply: reply{
				status: 429,
				header: map[string]string{"Retry-After": time.Now().Add(10 * time.Minute).UTC().Format(http.TimeFormat)},
				body:   bodyRateLimit,
			},
			state:      StateExhausted,
			reason:     ReasonRateLimit,
			cooldown:   10 * time.Minute,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "429 absurd hint is quota, clamped",
			reply:      reply{status: 429, header: map[string]string{"Retry-After": "99999999"}, body: bodyRateLimit},
			state:      StateExhausted,
			reason:     ReasonBilling,
			cooldown:   24 * time.Hour,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "400 context too long handed back",
			reply:      reply{status: 400, body: bodyContext},
			state:      StateOK,
			wantStatus: 400,
		},
		{
			name:       "404 handed back",
			reply:      reply{status: 404, body: `not found`},
			state:      StateOK,
			wantStatus: 404,
		},
		{
			name:       "413 handed back",
			reply:      reply{status: 413, body: `too large`},
			state:      StateOK,
			wantStatus: 413,
		},
		{
			name:       "422 handed back",
			reply:      reply{status: 422, body: `{"detail":"bad"}`},
			state:      StateOK,
			wantStatus: 422,
		},
		{
			name:       "501 handed back",
			reply:      reply{status: 501, body: `not implemented`},
			state:      StateOK,
			wantStatus: 501,
		},
		{
			name:       "500 retried, key kept",
			reply:      reply{status: 500, body: `oops`},
			state:      StateOK,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "503 retried, key kept",
			reply:      reply{status: 503, body: `busy`},
			state:      StateOK,
			wantStatus: 200,
			secondKey:  true,
		},
		{
			name:       "529 retried, key kept",
			reply:      reply{status: 529, body: bodyOverloaded},
			state:      StateOK,
			wantStatus: 200,
			secondKey:  true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, func(key string, n int) reply {
				if key == keyA {
					return tc.reply
				}
				return reply{status: 200, body: "fine"}
			})
			tr := newTransport(t, []string{keyA, keyB}, WithStrategy(FillFirst))
			start := time.Now()
			status, body := get(t, tr, p.URL)

			assert.Equal(t, tc.wantStatus, status)
			if tc.wantStatus != 200 {
				assert.Equal(t, tc.reply.body, body, "error body handed back whole")
			}
			a := statusOf(t, tr, keyA)
			assert.Equal(t, tc.state, a.State)
			assert.Equal(t, tc.reason, a.Reason)
			if tc.cooldown > 0 {
				assert.WithinDuration(t, start.Add(tc.cooldown), a.ResetAt, 2*time.Second)
			} else {
				assert.True(t, a.ResetAt.IsZero())
			}
			assert.Equal(t, tc.secondKey, p.count(keyB) > 0, "moved to the second key")
		})
	}
}

func TestRotationDoesNotSpendRetryBudget(t *testing.T) {
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = fmt.Sprintf("sk-test-%028d", i)
	}
	p := newProvider(t, func(key string, n int) reply {
		if key == keys[8] || key == keys[9] {
			return reply{status: 200, body: "ok"}
		}
		return reply{status: 401, body: bodyInvalidKey}
	})
	tr := newTransport(t, keys, WithStrategy(FillFirst), WithMaxRetries(1))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 200, status)
	assert.Len(t, p.keys(), 9, "eight dead keys, then the good one")
	for _, k := range keys[:8] {
		assert.Equal(t, StateDead, statusOf(t, tr, k).State)
	}
}

func TestTransientRetriesAreBounded(t *testing.T) {
	p := newProvider(t, func(string, int) reply { return reply{status: 503, body: "still down"} })
	tr := newTransport(t, []string{keyA, keyB}, WithMaxRetries(2))
	status, body := get(t, tr, p.URL)
	assert.Equal(t, 503, status, "the last response is handed back")
	assert.Equal(t, "still down", body)
	assert.Len(t, p.keys(), 3)
	for _, s := range tr.Keys() {
		assert.Equal(t, StateOK, s.State, "a server's trouble is not the key's")
	}
	assert.Equal(t, uint64(3), tr.Keys()[0].Failures+tr.Keys()[1].Failures)
}

func TestNoAttemptBeyondKeysPlusRetries(t *testing.T) {
	// Every key is rate limited with a zero wait: each comes straight back,
	// which would loop forever without the overall bound.
	p := newProvider(t, func(string, int) reply {
		return reply{status: 429, header: map[string]string{"Retry-After": "0"}, body: bodyRateLimit}
	})
	tr := newTransport(t, []string{keyA, keyB, keyC}, WithMaxRetries(1))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 429, status)
	assert.Len(t, p.keys(), 3+2)
}

func TestBlamesTheKeyActuallySent(t *testing.T) {
	// Many requests at once; only keyB is revoked. Whatever the interleaving,
	// keyA and keyC must stay OK.
	p := newProvider(t, func(key string, _ int) reply {
		if key == keyB {
			return reply{status: 401, body: bodyInvalidKey}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, []string{keyA, keyB, keyC})
	for _, status := range getConcurrently(t, tr, p.URL, 50) {
		assert.Equal(t, 200, status)
	}
	assert.Equal(t, StateOK, statusOf(t, tr, keyA).State)
	assert.Equal(t, StateDead, statusOf(t, tr, keyB).State)
	assert.Equal(t, StateOK, statusOf(t, tr, keyC).State)
}

// TestBasePanicAfterAKeptResponse has the base panic on a retry, after the
// first attempt's 503 was kept to hand back: the call ends with the panic as
// its error, the kept response is closed, and a panic that is not the base's
// (here, in a state-change callback) goes on up to the caller.
func TestBasePanicAfterAKeptResponse(t *testing.T) {
	var closed atomic.Bool
	attempts := 0
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if attempts++; attempts == 1 {
			resp := answer(r, 503, `{"error":{"message":"overloaded"}}`)
			resp.Body = readCloser{
				Reader: strings.NewReader("overloaded"),
				Closer: closerFunc(func() error { closed.Store(true); return nil }),
			}
			return resp, nil
		}
		panic("half-closed connection")
	})
	tr := newTransport(t, []string{keyA, keyB}, WithBase(base),
		WithBackoff(func() backoff.BackOff { return &backoff.ZeroBackOff{} }))
	resp, err := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
	require.Nil(t, resp)
	require.ErrorContains(t, err, "base RoundTripper panicked: half-closed connection")
	assert.True(t, closed.Load(), "the kept 503 was closed")
	assert.Equal(t, uint64(1), tr.Stats().Failures[ReasonTransport])

	cb := newTransport(t, []string{keyA}, WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return answer(r, 401, bodyRevoked), nil
	})), WithOnStateChange(func(StateChange) { panic("callback bug") }))
	assert.PanicsWithValue(t, "callback bug", func() { cb.RoundTrip(httptestRequest(t, "http://api.test/")) })
}

func TestTransportErrors(t *testing.T) {
	t.Run("retryable network error is retried", func(t *testing.T) {
		var calls atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				return nil, errors.New("read: connection reset by peer")
			}
			return answer(r, 200, "ok"), nil
		})
		tr := newTransport(t, []string{keyA}, WithBase(base))
		resp, err := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, int32(2), calls.Load())
		assert.Equal(t, StateOK, tr.Keys()[0].State)
		assert.Equal(t, uint64(1), tr.Keys()[0].Failures)
	})
	t.Run("unretryable error is returned at once", func(t *testing.T) {
		tr := newTransport(t, []string{keyA}, WithBase(http.DefaultTransport))
		_, err := tr.RoundTrip(httptestRequest(t, "ftp://api.test/"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "unsupported protocol scheme")
		assert.True(t, strings.HasPrefix(err.Error(), "credpool: "))
		assert.Equal(t, uint64(1), tr.Keys()[0].Requests)
	})
	t.Run("budget spent on network errors hands back the last provider response", func(t *testing.T) {
		var calls atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				return answer(r, 503, "busy"), nil
			}
			return nil, errors.New("read: connection reset by peer")
		})
		tr := newTransport(t, []string{keyA}, WithBase(base), WithMaxRetries(2))
		resp, err := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, "busy", string(body))
		assert.Equal(t, int32(3), calls.Load())
	})
	t.Run("a network error after the context ended wraps both", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		base := roundTripFunc(func(*http.Request) (*http.Response, error) {
			cancel()
			return nil, io.EOF
		})
		tr := newTransport(t, []string{keyA}, WithBase(base))
		_, err := tr.RoundTrip(httptestRequest(t, "http://api.test/").WithContext(ctx))
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, io.EOF)
		assert.EqualError(t, err, "credpool: key sk-…1111: context canceled (EOF)")
	})
	t.Run("errors wrap the cause", func(t *testing.T) {
		base := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errBoom })
		tr := newTransport(t, []string{keyA}, WithBase(base), WithMaxRetries(1))
		_, err := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
		assert.ErrorIs(t, err, errBoom)
	})
	t.Run("base gives both response and error", func(t *testing.T) {
		closed := false
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp := answer(r, 200, "ok")
			resp.Body = readCloser{
				Reader: strings.NewReader("ok"),
				Closer: closerFunc(func() error { closed = true; return nil }),
			}
			return resp, errBoom
		})
		tr := newTransport(t, []string{keyA}, WithBase(base), WithMaxRetries(0))
		resp, err := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, errBoom)
		assert.True(t, closed)
	})
	t.Run("base gives neither", func(t *testing.T) {
		base := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })
		tr := newTransport(t, []string{keyA}, WithBase(base), WithMaxRetries(0))
		resp, err := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
		assert.Nil(t, resp)
		assert.EqualError(t, err, "credpool: key sk-…1111: base RoundTripper returned neither a response nor an error")
	})
	t.Run("nil request", func(t *testing.T) {
		tr := newTransport(t, []string{keyA})
		resp, err := tr.RoundTrip(nil)
		assert.Nil(t, resp)
		assert.EqualError(t, err, "credpool: nil request")
	})
}

func TestStreamsFlowUnbuffered(t *testing.T) {
	firstRead := make(chan struct{})
	srv := newProvider(t, nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select { // the second event only after the client has read the first
		case <-firstRead:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, "data: two\n\n")
	})
	tr := newTransport(t, []string{keyA})
	resp, err := tr.RoundTrip(httptestRequest(t, srv.URL))
	require.NoError(t, err)
	defer resp.Body.Close()
	buf := make([]byte, len("data: one\n\n"))
	start := time.Now()
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 2*time.Second, "the first event arrives before the stream ends")
	close(firstRead)
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "data: two\n\n", string(rest))
}

func TestConcurrentKeysDyingMidRun(t *testing.T) {
	const nKeys, workers, perWorker = 20, 32, 25
	keys := make([]string, nKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("sk-test-%024d%04d", i, i)
	}
	// Keys 0..9 are revoked one by one as the run goes on; the rest live.
	var served atomic.Int64
	var mu sync.Mutex
	revokedAt := map[string]int64{}
	afterRevoke := map[string]int{} // requests a key got after the provider revoked it
	p := newProvider(t, func(key string, _ int) reply {
		n := served.Add(1)
		mu.Lock()
		defer mu.Unlock()
		for i := 0; i < 10; i++ {
			if _, ok := revokedAt[keys[i]]; !ok && n > int64(i*40) {
				revokedAt[keys[i]] = n
			}
		}
		if _, ok := revokedAt[key]; ok {
			afterRevoke[key]++
			return reply{status: 401, body: bodyRevoked}
		}
		if n%17 == 0 {
			return reply{status: 429, header: map[string]string{"Retry-After-Ms": "20"}, body: bodyRateLimit}
		}
		if n%23 == 0 {
			return reply{status: 503, body: "busy"}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, keys, WithMaxRetries(5))
	var wg sync.WaitGroup
	var failures atomic.Int32
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				payload := fmt.Sprintf("w%d-i%d", w, i)
				req, _ := http.NewRequest(http.MethodPost, p.URL, bytes.NewBufferString(payload))
				resp, err := tr.RoundTrip(req)
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}(w)
	}
	wg.Wait()
	assert.Zero(t, failures.Load(), "ten dead keys of twenty never fail a request")
	for i, s := range tr.Keys() {
		if i < 10 {
			assert.Equal(t, StateDead, s.State, "key %d", i)
		} else {
			assert.NotEqual(t, StateDead, s.State, "key %d", i)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for k, n := range afterRevoke {
		// Only attempts already in flight when the key was killed may reach
		// the provider afterwards: at most one per worker.
		assert.LessOrEqual(t, n, workers, "key %s", k[len(k)-4:])
	}
}

func TestSuccessPathAllocations(t *testing.T) {
	tr := newTransport(t, benchKeys(2), WithBase(cannedOK{}))
	req := benchRequest()
	got := testing.AllocsPerRun(200, func() {
		if _, err := tr.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
	})
	floor := testing.AllocsPerRun(200, func() {
		out := new(http.Request)
		*out = *req
		out.Header = maps.Clone(req.Header)
		sinkResponse, _ = http.RoundTripper(cannedOK{}).RoundTrip(out)
	})
	assert.Equal(t, floor, got, "allocations per request: the floor's, no more")
}

func TestCallbackMayCallBack(t *testing.T) {
	p := newProvider(t, func(string, int) reply { return reply{status: 401, body: bodyInvalidKey} })
	var tr *Transport
	var statuses atomic.Int32
	tr = newTransport(t, []string{keyA}, WithOnStateChange(func(StateChange) {
		_ = tr.Keys() // would deadlock if a lock were held
		statuses.Add(1)
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, tr, p.URL)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("callback deadlocked")
	}
	assert.Equal(t, int32(1), statuses.Load())
}
