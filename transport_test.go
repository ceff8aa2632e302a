package credpool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	bodyInvalidKey  = `{"error":{"message":"Incorrect API key provided: sk-te***1111.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`
	bodyDeactivated = `{"error":{"message":"The OpenAI account associated with this API key has been deactivated.","type":"invalid_request_error","param":null,"code":"account_deactivated"}}`
	bodyRevoked     = `{"error":{"message":"Your authentication token has been revoked.","code":"token_revoked"}}`
	bodyQuota       = `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`
	bodyCredit      = `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}`
	bodyRateLimit   = `{"error":{"message":"Rate limit reached for gpt-4 on tokens per min (TPM).","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`
	bodyContext     = `{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`
	bodyOverloaded  = `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
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
		{"401 invalid_api_key kills", reply{401, nil, bodyInvalidKey}, StateDead, ReasonAuthPermanent, 0, 200, true},
		{"401 account_deactivated kills", reply{401, nil, bodyDeactivated}, StateDead, ReasonAuthPermanent, 0, 200, true},
		{"403 token_revoked kills", reply{403, nil, bodyRevoked}, StateDead, ReasonAuthPermanent, 0, 200, true},
		{"401 deactivated phrase kills", reply{401, nil, `{"message":"This key has been deactivated"}`}, StateDead, ReasonAuthPermanent, 0, 200, true},
		{"401 unknown cools 5m", reply{401, nil, `{"error":"unauthorized"}`}, StateExhausted, ReasonAuth, 5 * time.Minute, 200, true},
		{"403 unknown cools 5m", reply{403, nil, `forbidden`}, StateExhausted, ReasonAuth, 5 * time.Minute, 200, true},
		{"402 billing cools 1h", reply{402, nil, `{"error":{"message":"Insufficient Balance"}}`}, StateExhausted, ReasonBilling, time.Hour, 200, true},
		{"429 insufficient_quota is billing", reply{429, nil, bodyQuota}, StateExhausted, ReasonBilling, time.Hour, 200, true},
		{"400 credit balance is billing", reply{400, nil, bodyCredit}, StateExhausted, ReasonBilling, time.Hour, 200, true},
		{"429 default 60s", reply{429, nil, bodyRateLimit}, StateExhausted, ReasonRateLimit, time.Minute, 200, true},
		{"429 Retry-After seconds", reply{429, map[string]string{"Retry-After": "120"}, bodyRateLimit}, StateExhausted, ReasonRateLimit, 2 * time.Minute, 200, true},
		{"429 Retry-After fractional", reply{429, map[string]string{"Retry-After": "90.5"}, bodyRateLimit}, StateExhausted, ReasonRateLimit, 90 * time.Second, 200, true},
		{"429 retry-after-ms", reply{429, map[string]string{"Retry-After-Ms": "45000"}, bodyRateLimit}, StateExhausted, ReasonRateLimit, 45 * time.Second, 200, true},
		{"429 Retry-After date", reply{429, map[string]string{"Retry-After": time.Now().Add(10 * time.Minute).UTC().Format(http.TimeFormat)}, bodyRateLimit}, StateExhausted, ReasonRateLimit, 10 * time.Minute, 200, true},
		{"429 absurd hint is quota, clamped", reply{429, map[string]string{"Retry-After": "99999999"}, bodyRateLimit}, StateExhausted, ReasonBilling, 24 * time.Hour, 200, true},
		{"400 context too long handed back", reply{400, nil, bodyContext}, StateOK, "", 0, 400, false},
		{"404 handed back", reply{404, nil, `not found`}, StateOK, "", 0, 404, false},
		{"413 handed back", reply{413, nil, `too large`}, StateOK, "", 0, 413, false},
		{"422 handed back", reply{422, nil, `{"detail":"bad"}`}, StateOK, "", 0, 422, false},
		{"501 handed back", reply{501, nil, `not implemented`}, StateOK, "", 0, 501, false},
		{"500 retried, key kept", reply{500, nil, `oops`}, StateOK, "", 0, 200, true},
		{"503 retried, key kept", reply{503, nil, `busy`}, StateOK, "", 0, 200, true},
		{"529 retried, key kept", reply{529, nil, bodyOverloaded}, StateOK, "", 0, 200, true},
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

func TestBackoffStopEndsRetries(t *testing.T) {
	p := newProvider(t, func(string, int) reply { return reply{status: 500, body: "x"} })
	tr := newTransport(t, []string{keyA}, WithBackoff(func() backoff.BackOff { return &backoff.StopBackOff{} }))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 500, status)
	assert.Len(t, p.keys(), 1)
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

func TestWaitsForCoolingKey(t *testing.T) {
	p := newProvider(t, func(_ string, n int) reply {
		if n == 1 {
			return reply{status: 429, header: map[string]string{"Retry-After-Ms": "50"}, body: bodyRateLimit}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, []string{keyA}, WithMaxWait(time.Second))
	start := time.Now()
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 200, status)
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	assert.Len(t, p.keys(), 2)
}

func TestDoesNotWaitPastMaxWaitOrDeadline(t *testing.T) {
	limited := func(string, int) reply {
		return reply{status: 429, header: map[string]string{"Retry-After": "2"}, body: bodyRateLimit}
	}
	t.Run("max wait", func(t *testing.T) {
		p := newProvider(t, limited)
		tr := newTransport(t, []string{keyA}, WithMaxWait(100*time.Millisecond))
		start := time.Now()
		status, _ := get(t, tr, p.URL)
		assert.Equal(t, 429, status)
		assert.Less(t, time.Since(start), time.Second)
	})
	t.Run("deadline", func(t *testing.T) {
		p := newProvider(t, limited)
		tr := newTransport(t, []string{keyA})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		resp, err := tr.RoundTrip(httptestRequest(t, p.URL).WithContext(ctx))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 429, resp.StatusCode)
		assert.Less(t, time.Since(start), 150*time.Millisecond, "answers now instead of sleeping to fail")
	})
}

func TestCancelEndsWait(t *testing.T) {
	p := newProvider(t, func(string, int) reply {
		return reply{status: 429, header: map[string]string{"Retry-After": "5"}, body: bodyRateLimit}
	})
	tr := newTransport(t, []string{keyA})
	getWithin(t, tr, p.URL, 100*time.Millisecond) // cools the only key for 5 s

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	start := time.Now()
	_, err := tr.RoundTrip(httptestRequest(t, p.URL).WithContext(ctx))
	assert.ErrorIs(t, err, context.Canceled)
	assert.True(t, strings.HasPrefix(err.Error(), "credpool: "), err.Error())
	assert.Less(t, time.Since(start), time.Second)
}

func TestCancelEndsBackoff(t *testing.T) {
	p := newProvider(t, func(string, int) reply { return reply{status: 503, body: "busy"} })
	tr := newTransport(t, []string{keyA}, WithBackoff(func() backoff.BackOff { return backoff.NewConstantBackOff(5 * time.Second) }))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	start := time.Now()
	resp, err := tr.RoundTrip(httptestRequest(t, p.URL).WithContext(ctx))
	assert.Nil(t, resp)
	assert.ErrorIs(t, err, context.Canceled)
	assert.EqualError(t, err, "credpool: backing off: context canceled")
	assert.Less(t, time.Since(start), time.Second)
}

func TestNoBufferingWhenNoRetryIsPossible(t *testing.T) {
	body := newTrackedBody("payload")
	var got io.ReadCloser
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Body
		r.Body.Close()
		return answer(r, 200, "ok"), nil
	})
	tr := newTransport(t, []string{keyA}, WithBase(base), WithMaxRetries(0), WithMaxWait(0))
	req, err := http.NewRequest(http.MethodPost, "http://api.test/", body)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Same(t, body, got, "the caller's body goes to the base as it is")
	assert.Equal(t, int32(1), body.closes.Load())
}

func TestResetRevivesAndWakesWaiters(t *testing.T) {
	var revoked atomic.Bool
	revoked.Store(true)
	p := newProvider(t, func(string, int) reply {
		if revoked.Load() {
			return reply{status: 429, header: map[string]string{"Retry-After": "10"}, body: bodyRateLimit}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, []string{keyA})
	getWithin(t, tr, p.URL, 100*time.Millisecond)
	require.Equal(t, StateExhausted, tr.Keys()[0].State)

	revoked.Store(false)
	time.AfterFunc(30*time.Millisecond, tr.Reset)
	start := time.Now()
	status, _ := get(t, tr, p.URL) // waits for the 10 s cooldown, woken by Reset
	assert.Equal(t, 200, status)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, StateOK, tr.Keys()[0].State)
	assert.Empty(t, tr.Keys()[0].Reason, "a reset key has no past to show")
}

func TestResetRevivesDeadKeys(t *testing.T) {
	p := newProvider(t, func(string, int) reply { return reply{status: 401, body: bodyRevoked} })
	tr := newTransport(t, []string{keyA, keyB})
	get(t, tr, p.URL)
	for _, s := range tr.Keys() {
		require.Equal(t, StateDead, s.State)
	}
	tr.Reset()
	for _, s := range tr.Keys() {
		assert.Equal(t, StateOK, s.State)
	}
}

func TestLateVerdictAfterResetIsIgnored(t *testing.T) {
	sent := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if calls.Add(1) > 1 {
			return answer(r, 200, "ok"), nil
		}
		close(sent)
		<-release
		return answer(r, 401, bodyInvalidKey), nil
	})
	tr := newTransport(t, []string{keyA}, WithBase(base))
	done := make(chan *http.Response)
	go func() {
		resp, _ := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
		done <- resp
	}()
	<-sent
	tr.Reset() // the key was revived while the attempt was in flight
	close(release)
	resp := <-done
	require.NotNil(t, resp)
	resp.Body.Close()
	assert.Equal(t, StateOK, tr.Keys()[0].State, "a response to an attempt from before Reset must not kill the key")
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

func TestSetsHeader(t *testing.T) {
	cases := []struct {
		name   string
		opts   []Option
		header string
		want   string
	}{
		{"default bearer", nil, "Authorization", "Bearer " + keyA},
		{"raw x-api-key", []Option{WithHeader("x-api-key", "")}, "X-Api-Key", keyA},
		{"azure api-key", []Option{WithHeader("api-key", "")}, "Api-Key", keyA},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got = r.Header.Values(tc.header)
				return answer(r, 200, "ok"), nil
			})
			tr := newTransport(t, []string{keyA}, append(tc.opts, WithBase(base))...)
			req := httptestRequest(t, "http://api.test/")
			req.Header.Set(tc.header, "placeholder-from-the-sdk")
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, []string{tc.want}, got, "the SDK's placeholder is replaced")
		})
	}
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
			resp.Body = readCloser{strings.NewReader("overloaded"), closerFunc(func() error { closed.Store(true); return nil })}
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

// TestSetsHeaderOnAnyHeaderMap covers the shapes of map the attempt's header
// copy starts from: none at all, a small one, and one past a single group of
// slots, which the copy must grow rather than overwrite.
func TestSetsHeaderOnAnyHeaderMap(t *testing.T) {
	many := http.Header{}
	for i := range 20 {
		many.Set(fmt.Sprintf("X-Sdk-%d", i), strconv.Itoa(i))
	}
	cases := []struct {
		name   string
		header http.Header
	}{
		{"nil", nil},
		{"empty", http.Header{}},
		{"small", http.Header{"Accept": {"application/json"}}},
		{"twenty names", many},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got http.Header
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got = r.Header
				return answer(r, 200, "ok"), nil
			})
			tr := newTransport(t, []string{keyA}, WithBase(base))
			req := httptestRequest(t, "http://api.test/")
			req.Header = tc.header
			before := tc.header.Clone()

			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, "Bearer "+keyA, got.Get("Authorization"))
			for name, v := range tc.header {
				assert.Equal(t, v, got[name], name)
			}
			assert.Len(t, got, len(tc.header)+1)
			assert.Equal(t, before, req.Header, "the caller's map is untouched")
		})
	}
}

func TestCallerRequestUnchanged(t *testing.T) {
	p := newProvider(t, func(key string, _ int) reply {
		if key == keyA {
			return reply{status: 401, body: bodyInvalidKey}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, []string{keyA, keyB}, WithStrategy(FillFirst))
	req, err := http.NewRequest(http.MethodPost, p.URL+"/v1/chat?x=1", strings.NewReader(`{"q":1}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer placeholder")
	before := req.Header.Clone()
	urlBefore := req.URL.String()

	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, before, req.Header)
	assert.Equal(t, urlBefore, req.URL.String())
	assert.Equal(t, []string{`{"q":1}`, `{"q":1}`}, p.bodies, "the replay carried the same body")
}

func TestRequestBodies(t *testing.T) {
	rotateOnce := func(key string, _ int) reply {
		if key == keyA {
			return reply{status: 401, body: bodyInvalidKey}
		}
		return reply{status: 200, body: "ok"}
	}
	cases := []struct {
		name       string
		body       string
		getBody    bool
		opts       []Option
		wantStatus int
		wantBodies []string
	}{
		{"GetBody replays", "hello", true, nil, 200, []string{"hello", "hello"}},
		{"buffered replays", "hello", false, nil, 200, []string{"hello", "hello"}},
		{"too large is sent once", "0123456789", false, []Option{WithMaxReplayBody(4)}, 401, []string{"0123456789"}},
		{"exactly the limit replays", "0123", false, []Option{WithMaxReplayBody(4)}, 200, []string{"0123", "0123"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, rotateOnce)
			tr := newTransport(t, []string{keyA, keyB}, append(tc.opts, WithStrategy(FillFirst))...)
			body := newTrackedBody(tc.body)
			req, err := http.NewRequest(http.MethodPost, p.URL, body)
			require.NoError(t, err)
			if tc.getBody {
				req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(tc.body)), nil }
			}
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tc.wantStatus, resp.StatusCode)
			assert.Equal(t, tc.wantBodies, p.bodies)
			assert.Equal(t, int32(1), body.closes.Load(), "the caller's body is closed exactly once")
		})
	}
}

// TestBodyClosedOnEveryPath checks the RoundTripper contract: the caller's
// body is closed exactly once whether or not an attempt was sent.
func TestBodyClosedOnEveryPath(t *testing.T) {
	ok := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return answer(r, 200, "ok"), nil
	})
	cases := []struct {
		name    string
		prepare func(t *testing.T, tr *Transport, req *http.Request) *http.Request
		opts    []Option
		wantErr bool
	}{
		{"success", nil, nil, false},
		{"nil URL", func(_ *testing.T, _ *Transport, r *http.Request) *http.Request { r.URL = nil; return r }, nil, true},
		{"foreign host", nil, []Option{WithHosts("other.test")}, false},
		{"no usable key", func(t *testing.T, tr *Transport, r *http.Request) *http.Request {
			killAll(t, tr)
			return r
		}, nil, true},
		{"read error while buffering", func(_ *testing.T, _ *Transport, r *http.Request) *http.Request {
			r.Body.(*trackedBody).readErr = errBoom
			return r
		}, nil, true},
		{"GetBody fails on replay", func(_ *testing.T, _ *Transport, r *http.Request) *http.Request {
			r.GetBody = func() (io.ReadCloser, error) { return nil, errBoom }
			return r
		}, []Option{WithBase(firstFails(ok))}, true},
		{"cancelled before send", func(t *testing.T, tr *Transport, r *http.Request) *http.Request {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return r.WithContext(ctx)
		}, []Option{WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
			r.Body.Close()
			return nil, r.Context().Err()
		}))}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTransport(t, []string{keyA, keyB}, append([]Option{WithBase(ok)}, tc.opts...)...)
			body := newTrackedBody("payload")
			req, err := http.NewRequest(http.MethodPost, "http://api.test/", body)
			require.NoError(t, err)
			if tc.prepare != nil {
				req = tc.prepare(t, tr, req)
			}
			resp, err := tr.RoundTrip(req)
			if tc.wantErr {
				assert.Error(t, err)
				assert.Nil(t, resp)
			} else {
				require.NoError(t, err)
				resp.Body.Close()
			}
			assert.Equal(t, int32(1), body.closes.Load())
		})
	}
}

// firstFails answers the first attempt with a 503 and the rest with next.
func firstFails(next http.RoundTripper) http.RoundTripper {
	var n atomic.Int32
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if n.Add(1) == 1 {
			if r.Body != nil {
				r.Body.Close()
			}
			return answer(r, 503, "busy"), nil
		}
		return next.RoundTrip(r)
	})
}

// killAll revokes every key of tr through its own classifier.
func killAll(t *testing.T, tr *Transport) {
	t.Helper()
	for i := range tr.pool.slots {
		l, _, ok := tr.pool.acquire(-1)
		require.True(t, ok, "key %d", i)
		tr.pool.fail(l, verdict{reason: ReasonAuthPermanent, final: true}, 401, time.Now(), 0)
	}
}

func TestErrorBodyHandedBackWhole(t *testing.T) {
	big := strings.Repeat("x", 200<<10) // beyond the 64 KiB read to classify
	p := newProvider(t, func(string, int) reply { return reply{status: 400, body: big} })
	tr := newTransport(t, []string{keyA})
	status, body := get(t, tr, p.URL)
	assert.Equal(t, 400, status)
	assert.Equal(t, len(big), len(body))
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
			resp.Body = readCloser{strings.NewReader("ok"), closerFunc(func() error { closed = true; return nil })}
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

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func TestStrategies(t *testing.T) {
	keys := []string{keyA, keyB, keyC}
	cases := []struct {
		strategy Strategy
		check    func(t *testing.T, seen []string)
	}{
		{FillFirst, func(t *testing.T, seen []string) {
			for _, k := range seen {
				assert.Equal(t, keyA, k)
			}
		}},
		{RoundRobin, func(t *testing.T, seen []string) {
			for i, k := range seen {
				assert.Equal(t, keys[i%3], k)
			}
		}},
		{LeastUsed, func(t *testing.T, seen []string) {
			counts := map[string]int{}
			for _, k := range seen {
				counts[k]++
			}
			assert.Equal(t, map[string]int{keyA: 10, keyB: 10, keyC: 10}, counts)
		}},
		{Random, func(t *testing.T, seen []string) {
			counts := map[string]int{}
			for _, k := range seen {
				counts[k]++
			}
			assert.Len(t, counts, 3, "every key is drawn over 30 requests")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.strategy.String(), func(t *testing.T) {
			p := newProvider(t, nil)
			tr := newTransport(t, keys, WithStrategy(tc.strategy))
			for i := 0; i < 30; i++ {
				get(t, tr, p.URL)
			}
			tc.check(t, p.keys())
		})
	}
}

func TestStrategiesSkipUnusableKeys(t *testing.T) {
	for _, s := range []Strategy{RoundRobin, FillFirst, LeastUsed, Random} {
		t.Run(s.String(), func(t *testing.T) {
			p := newProvider(t, func(key string, _ int) reply {
				if key == keyB {
					return reply{status: 401, body: bodyInvalidKey}
				}
				return reply{status: 200, body: "ok"}
			})
			tr := newTransport(t, []string{keyA, keyB, keyC}, WithStrategy(s))
			for i := 0; i < 20; i++ {
				status, _ := get(t, tr, p.URL)
				require.Equal(t, 200, status)
			}
			assert.LessOrEqual(t, p.count(keyB), 1, "a dead key is never chosen again")
		})
	}
}

func TestCooledKeyReturnsAfterReset(t *testing.T) {
	p := newProvider(t, func(key string, n int) reply {
		if key == keyA && n == 1 {
			return reply{status: 429, header: map[string]string{"Retry-After-Ms": "30"}, body: bodyRateLimit}
		}
		return reply{status: 200, body: "ok"}
	})
	var changes []StateChange
	var mu sync.Mutex
	tr := newTransport(t, []string{keyA, keyB}, WithStrategy(FillFirst), WithOnStateChange(func(c StateChange) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	}))
	get(t, tr, p.URL)
	assert.Equal(t, StateExhausted, tr.Keys()[0].State)
	time.Sleep(40 * time.Millisecond)
	assert.Equal(t, StateOK, tr.Keys()[0].State, "Keys reports an ended cooldown as OK")
	get(t, tr, p.URL)
	assert.Equal(t, []string{keyA, keyB, keyA}, p.keys())
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, changes, 2)
	assert.Equal(t, StateChange{Index: 0, Label: tr.Keys()[0].Label, From: StateOK, To: StateExhausted, Reason: ReasonRateLimit, Status: 429, ResetAt: changes[0].ResetAt}, changes[0])
	assert.Equal(t, StateChange{Index: 0, Label: tr.Keys()[0].Label, From: StateExhausted, To: StateOK}, changes[1])
}

func TestCooldownsMergeToLaterDeadline(t *testing.T) {
	tr := newTransport(t, []string{keyA})
	l, _, _ := tr.pool.acquire(-1)
	now := time.Now()
	later := now.Add(time.Hour)
	_, changed := tr.pool.fail(l, verdict{reason: ReasonBilling}, 429, now, time.Hour)
	require.True(t, changed)
	_, changed = tr.pool.fail(l, verdict{reason: ReasonRateLimit}, 429, now, time.Minute)
	assert.False(t, changed, "a shorter cooldown does not cut a longer one")
	assert.Equal(t, later, tr.Keys()[0].ResetAt)
	assert.Equal(t, ReasonBilling, tr.Keys()[0].Reason)
}

func TestDeadKeyStaysDeadOnLaterVerdicts(t *testing.T) {
	tr := newTransport(t, []string{keyA})
	l, _, _ := tr.pool.acquire(-1)
	tr.pool.fail(l, verdict{reason: ReasonAuthPermanent, final: true}, 401, time.Now(), 0)
	_, changed := tr.pool.fail(l, verdict{reason: ReasonRateLimit}, 429, time.Now(), time.Millisecond)
	assert.False(t, changed)
	time.Sleep(2 * time.Millisecond)
	assert.Equal(t, StateDead, tr.Keys()[0].State)
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

func TestCloseIdleConnectionsReachesBase(t *testing.T) {
	base := &idleCloser{}
	tr := newTransport(t, []string{keyA}, WithBase(base))
	tr.CloseIdleConnections()
	assert.True(t, base.closed)
	newTransport(t, []string{keyA}, WithBase(roundTripFunc(nil))).CloseIdleConnections() // no such method: no panic
}

type idleCloser struct{ closed bool }

func (c *idleCloser) RoundTrip(r *http.Request) (*http.Response, error) {
	return answer(r, 200, ""), nil
}
func (c *idleCloser) CloseIdleConnections() { c.closed = true }

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

// getWithin sends a GET that may take at most d, so that it does not wait for
// a cooling key, and returns the status.
func getWithin(t *testing.T, tr http.RoundTripper, url string, d time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	resp, err := tr.RoundTrip(httptestRequest(t, url).WithContext(ctx))
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// httptestRequest makes a GET request, failing the test on error.
func httptestRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	return req
}

// TestSuccessPathAllocations holds the success path to what any correct
// RoundTripper must allocate: the request's copy and its header map. A call
// that escapes to the heap (a method value of it handed out, say) shows here
// as one allocation more.
var sinkResponse *http.Response

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

// TestWaitingHasOneBudget: a request that meets cooling keys one after
// another waits no more than WithMaxWait in all, not WithMaxWait each time,
// then gets the provider's last response. (Measured before: one dead key and
// one rate-limited key kept a request without a deadline waiting five times
// over.)
func TestWaitingHasOneBudget(t *testing.T) {
	p := newProvider(t, func(key string, _ int) reply {
		if key == keyA {
			return reply{status: 401, body: bodyRevoked}
		}
		return reply{status: 429, header: map[string]string{"Retry-After-Ms": "150"}, body: bodyRateLimit}
	})
	const budget = 300 * time.Millisecond
	tr := newTransport(t, []string{keyA, keyB}, WithStrategy(FillFirst), WithMaxWait(budget))
	start := time.Now()
	status, _ := get(t, tr, p.URL)
	elapsed := time.Since(start)
	assert.Equal(t, 429, status, "the provider's last word")
	assert.LessOrEqual(t, tr.Stats().Waited, budget+50*time.Millisecond, "waited in all")
	assert.Less(t, elapsed, 3*budget, "one budget, not one per wait")
}
