package credpool

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

func TestSetsHeader(t *testing.T) {
	cases := []struct {
		name   string
		opts   []Option
		header string
		want   string
	}{
		{name: "default bearer", header: "Authorization", want: "Bearer " + keyA},
		{name: "raw x-api-key", opts: []Option{WithHeader("x-api-key", "")}, header: "X-Api-Key", want: keyA},
		{name: "azure api-key", opts: []Option{WithHeader("api-key", "")}, header: "Api-Key", want: keyA},
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
		{name: "nil"},
		{name: "empty", header: http.Header{}},
		{name: "small", header: http.Header{"Accept": {"application/json"}}},
		{name: "twenty names", header: many},
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
		{name: "success"},
		{
			name:    "nil URL",
			prepare: func(_ *testing.T, _ *Transport, r *http.Request) *http.Request { r.URL = nil; return r },
			wantErr: true,
		},
		{name: "foreign host", opts: []Option{WithHosts("other.test")}},
		{
			name: "no usable key",
			prepare: func(t *testing.T, tr *Transport, r *http.Request) *http.Request {
				killAll(t, tr)
				return r
			},
			wantErr: true,
		},
		{
			name: "read error while buffering",
			prepare: func(_ *testing.T, _ *Transport, r *http.Request) *http.Request {
				r.Body.(*trackedBody).readErr = errBoom
				return r
			},
			wantErr: true,
		},
		{
			name: "GetBody fails on replay",
			prepare: func(_ *testing.T, _ *Transport, r *http.Request) *http.Request {
				r.GetBody = func() (io.ReadCloser, error) { return nil, errBoom }
				return r
			},
			opts:    []Option{WithBase(firstFails(ok))},
			wantErr: true,
		},
		{
			name: "cancelled before send",
			prepare: func(t *testing.T, tr *Transport, r *http.Request) *http.Request {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return r.WithContext(ctx)
			},
			opts: []Option{WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				r.Body.Close()
				return nil, r.Context().Err()
			}))},
			wantErr: true,
		},
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
	for i := range tr.pool().slots {
		l, _, ok := tr.pool().acquire(-1, time.Now)
		require.True(t, ok, "key %d", i)
		tr.pool().fail(l, verdict{reason: ReasonAuthPermanent, final: true}, 401, time.Now())
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

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

// TestZeroValueTransportErrs: a Transport that New did not make answers with
// an error, as x/oauth2's does, rather than a panic, and closes the body.
func TestZeroValueTransportErrs(t *testing.T) {
	var tr Transport
	body := newTrackedBody("payload")
	req, err := http.NewRequest(http.MethodPost, "http://api.test/", body)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	assert.Nil(t, resp)
	assert.EqualError(t, err, "credpool: Transport not made by New")
	assert.Equal(t, int32(1), body.closes.Load())
	assert.Nil(t, tr.Keys())
	assert.Equal(t, Stats{}, tr.Stats())
	assert.ErrorIs(t, tr.ResetKey(0), errNotNew)
	assert.NotPanics(t, tr.Reset)
	assert.NotPanics(t, tr.CloseIdleConnections)
	assert.NoError(t, tr.Close())
	assert.Equal(t, "credpool.Transport{not made by New}", tr.String())
}
