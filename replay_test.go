package credpool

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingBody counts the bytes read from it.
type countingBody struct {
	r    io.Reader
	read atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return nil }

// rejectsKeyA answers 429 to key A, after reading the whole body, and
// echoes the body back to any other key.
func rejectsKeyA(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	if strings.HasSuffix(r.Header.Get("Authorization"), keyA) {
		return answer(r, 429, bodyRateLimit), nil
	}
	return answer(r, 200, string(body)), nil
}

// postBody is a POST whose body has no GetBody, as a proxy's is.
func postBody(t *testing.T, body io.ReadCloser, length int64) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://api.test/v1/x", body)
	require.NoError(t, err)
	req.ContentLength = length
	return req
}

// TestReplayBudget: bodies are buffered for replay only while every request
// in flight together holds no more than WithReplayBudget; a body that does
// not fit is sent once, and the response that needed a replay says why it
// had none.
func TestReplayBudget(t *testing.T) {
	payload := strings.Repeat("x", 100)
	t.Run("within the budget, replayed", func(t *testing.T) {
		tr := newTransport(t, []string{keyA, keyB}, WithBase(roundTripFunc(rejectsKeyA)), WithStrategy(FillFirst), WithReplayBudget(150))
		for range 3 { // the budget comes back after each request
			tr.Reset()
			resp, err := tr.RoundTrip(postBody(t, io.NopCloser(strings.NewReader(payload)), -1))
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, payload, string(b))
		}
		assert.Zero(t, tr.budget.used.Load(), "everything given back")
	})
	t.Run("over the budget, sent once and said so", func(t *testing.T) {
		tr := newTransport(t, []string{keyA, keyB}, WithBase(roundTripFunc(rejectsKeyA)), WithStrategy(FillFirst), WithReplayBudget(50))
		for _, length := range []int64{100, -1} { // known length, and unknown
			tr.Reset()
			resp, err := tr.RoundTrip(postBody(t, io.NopCloser(strings.NewReader(payload)), length))
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, 429, resp.StatusCode)
			assert.Equal(t, skippedBudget, resp.Header.Get(NotReplayedHeader))
			assert.Equal(t, StateExhausted, tr.Keys()[0].State, "the key still pays")
		}
		assert.Zero(t, tr.budget.used.Load())
	})
	t.Run("over WithMaxReplayBody, not read before it is sent", func(t *testing.T) {
		body := &countingBody{r: strings.NewReader(payload)}
		var readBefore int64 = -1
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if readBefore < 0 {
				readBefore = body.read.Load()
			}
			return rejectsKeyA(r)
		})
		tr := newTransport(t, []string{keyA, keyB}, WithBase(base), WithStrategy(FillFirst), WithMaxReplayBody(10))
		resp, err := tr.RoundTrip(postBody(t, body, 100))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Zero(t, readBefore, "a declared length over the limit is believed")
		assert.Equal(t, skippedTooLarge, resp.Header.Get(NotReplayedHeader))
	})
	t.Run("a body longer than it declared", func(t *testing.T) {
		tr := newTransport(t, []string{keyA, keyB}, WithBase(roundTripFunc(rejectsKeyA)), WithStrategy(FillFirst), WithMaxReplayBody(150))
		resp, err := tr.RoundTrip(postBody(t, io.NopCloser(strings.NewReader(payload)), 10))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, payload, string(b), "the whole body, never a part")
	})
	t.Run("concurrent requests share it", func(t *testing.T) {
		var peak atomic.Int64
		var tr *Transport
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if u := tr.budget.used.Load(); u > peak.Load() {
				peak.Store(u)
			}
			return rejectsKeyA(r)
		})
		tr = newTransport(t, []string{keyA, keyB}, WithBase(base), WithReplayBudget(500))
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := tr.RoundTrip(postBody(t, io.NopCloser(strings.NewReader(payload)), 100))
				if assert.NoError(t, err) {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		assert.LessOrEqual(t, peak.Load(), int64(500))
		assert.Zero(t, tr.budget.used.Load())
	})
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
		{
			name:       "GetBody replays",
			body:       "hello",
			getBody:    true,
			wantStatus: 200,
			wantBodies: []string{"hello", "hello"},
		},
		{
			name:       "buffered replays",
			body:       "hello",
			wantStatus: 200,
			wantBodies: []string{"hello", "hello"},
		},
		{
			name:       "too large is sent once",
			body:       "0123456789",
			opts:       []Option{WithMaxReplayBody(4)},
			wantStatus: 401,
			wantBodies: []string{"0123456789"},
		},
		{
			name:       "exactly the limit replays",
			body:       "0123",
			opts:       []Option{WithMaxReplayBody(4)},
			wantStatus: 200,
			wantBodies: []string{"0123", "0123"},
		},
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
