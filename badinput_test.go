package credpool

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// outcome is what one hostile input must come to: an exact error, or a
// status, the key's state and reason, and optionally the exact body.
type outcome struct {
	err    string // exact error text; "" for no error
	status int
	body   *string
	state  State  // keyA's state after the call; "" to skip
	reason Reason // keyA's reason after the call
	within time.Duration
}

func ptr(s string) *string { return &s }

// roundTrip builds a Transport over keys with opts and sends req through it.
func roundTrip(keys []string, req *http.Request, opts ...Option) (*Transport, *http.Response, error) {
	tr, err := New(keys, append([]Option{WithBackoff(fastBackoff)}, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	resp, err := tr.RoundTrip(req)
	return tr, resp, err
}

// replying is a base that answers every attempt with one canned response.
func replying(status int, header http.Header, body []byte) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			r.Body.Close()
		}
		h := header.Clone()
		if h == nil {
			h = http.Header{}
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
	})
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	io.WriteString(zw, s)
	zw.Close()
	return b.Bytes()
}

// TestBadInput is the table of hostile and broken inputs: each gives a clear
// error or the documented behaviour, never a panic, a hang, or a key.
func TestBadInput(t *testing.T) {
	keys := []string{keyA, keyB}
	post := func(body io.Reader) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "http://api.test/v1", body)
		return req
	}
	get := func() *http.Request { return post(nil) }
	rateLimited := func(retryAfter string) http.RoundTripper {
		return replying(429, http.Header{"Retry-After": {retryAfter}}, []byte(bodyRateLimit))
	}
	deep := strings.Repeat(`{"error":`, 100000) + `"x"` + strings.Repeat(`}`, 100000)
	huge := `{"error":{"message":"` + strings.Repeat("a", 10<<20) + `","code":"invalid_api_key"}}`

	cases := []struct {
		name string
		run  func() (*Transport, *http.Response, error)
		want outcome
	}{
		// Keys.
		{"nil keys", func() (*Transport, *http.Response, error) { return roundTrip(nil, get()) },
			outcome{err: "credpool: invalid key: no keys given"}},
		{"empty key", func() (*Transport, *http.Response, error) { return roundTrip([]string{""}, get()) },
			outcome{err: "credpool: key 0 is empty"}},
		{"duplicate key", func() (*Transport, *http.Response, error) { return roundTrip([]string{keyA, keyA}, get()) },
			outcome{err: "credpool: key 1 duplicates key 0"}},
		{"CRLF in key", func() (*Transport, *http.Response, error) {
			return roundTrip([]string{keyA + "\r\nX-Evil: 1"}, get())
		}, outcome{err: "credpool: key 0 has a space, control or non-ASCII byte at offset 36"}},
		{"unicode space in key", func() (*Transport, *http.Response, error) {
			return roundTrip([]string{"sk-test\u2003" + keyB}, get())
		}, outcome{err: "credpool: key 0 has a space, control or non-ASCII byte at offset 7"}},

		// Options.
		{"negative retries", func() (*Transport, *http.Response, error) { return roundTrip(keys, get(), WithMaxRetries(-1)) },
			outcome{err: "credpool: invalid option: WithMaxRetries: -1 is negative"}},
		{"negative wait", func() (*Transport, *http.Response, error) { return roundTrip(keys, get(), WithMaxWait(-1)) },
			outcome{err: "credpool: invalid option: WithMaxWait: negative duration -1ns"}},
		{"negative cooldown", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, get(), WithCooldown(ReasonAuth, -time.Second))
		}, outcome{err: "credpool: invalid option: WithCooldown: -1s is not positive"}},
		{"zero max cooldown", func() (*Transport, *http.Response, error) { return roundTrip(keys, get(), WithMaxCooldown(0)) },
			outcome{err: "credpool: invalid option: WithMaxCooldown: 0s is not positive"}},
		{"negative error body limit", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, get(), WithMaxErrorBody(-1))
		}, outcome{err: "credpool: invalid option: WithMaxErrorBody: negative size -1"}},
		{"nil base", func() (*Transport, *http.Response, error) { return roundTrip(keys, get(), WithBase(nil)) },
			outcome{err: "credpool: invalid option: WithBase: nil RoundTripper"}},

		// Requests.
		{"nil request", func() (*Transport, *http.Response, error) { return roundTrip(keys, nil) },
			outcome{err: "credpool: nil request"}},
		{"nil URL", func() (*Transport, *http.Response, error) {
			req := get()
			req.URL = nil
			return roundTrip(keys, req)
		}, outcome{err: "credpool: request has no URL"}},
		{"body that errors on read", func() (*Transport, *http.Response, error) {
			b := newTrackedBody("x")
			b.readErr = errBoom
			return roundTrip(keys, post(b))
		}, outcome{err: "credpool: reading request body: boom"}},
		{"body that errors on close", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, post(readCloser{strings.NewReader("x"), closerFunc(func() error { return errBoom })}))
		}, outcome{err: "credpool: closing request body: boom"}},
		{"GetBody that fails on replay", func() (*Transport, *http.Response, error) {
			req := post(strings.NewReader("x"))
			req.GetBody = func() (io.ReadCloser, error) { return nil, errBoom }
			return roundTrip(keys, req, WithBase(replying(401, nil, []byte(bodyInvalidKey))))
		}, outcome{err: "credpool: GetBody: boom", state: StateDead, reason: ReasonAuthPermanent}},
		{"body over the replay limit is sent once", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, post(io.NopCloser(strings.NewReader("0123456789"))), WithMaxReplayBody(4),
				WithBase(replying(401, nil, []byte(bodyInvalidKey))))
		}, outcome{status: 401, body: ptr(bodyInvalidKey), state: StateDead, reason: ReasonAuthPermanent}},

		// Responses.
		{"response with nil body", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, get(), WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r}, nil
			})))
		}, outcome{status: 200, body: ptr(""), state: StateOK}},
		{"error response with nil body", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, get(), WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: 404, Header: http.Header{}, Request: r}, nil
			})))
		}, outcome{status: 404, body: ptr(""), state: StateOK}},
		{"gzip error body is read for its verdict, handed back as sent", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, get(), WithBase(replying(400, http.Header{"Content-Encoding": {"gzip"}}, gzipped(bodyContext))))
		}, outcome{status: 400, body: ptr(string(gzipped(bodyContext))), state: StateOK}},
		{"gzip error body says the key is dead", func() (*Transport, *http.Response, error) {
			return roundTrip([]string{keyA}, get(), WithBase(replying(401, http.Header{"Content-Encoding": {"gzip"}}, gzipped(bodyRevoked))))
		}, outcome{status: 401, state: StateDead, reason: ReasonAuthPermanent}},
		{"corrupt gzip falls back to the raw bytes", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, get(), WithBase(replying(404, http.Header{"Content-Encoding": {"gzip"}}, []byte("\x1f\x8bnot gzip"))))
		}, outcome{status: 404, body: ptr("\x1f\x8bnot gzip"), state: StateOK}},
		{"invalid UTF-8 in the error", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, get(), WithBase(replying(400, nil, []byte("{\"error\":{\"message\":\"\xff\xfe bad\",\"code\":\"x\"}}"))))
		}, outcome{status: 400, body: ptr("{\"error\":{\"message\":\"\xff\xfe bad\",\"code\":\"x\"}}"), state: StateOK}},
		{"10 MB single-line JSON error is bounded and handed back whole", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, get(), WithBase(replying(400, nil, []byte(huge))))
		}, outcome{status: 400, body: ptr(huge), state: StateOK}},
		{"deeply nested JSON", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, get(), WithMaxErrorBody(2<<20), WithBase(replying(400, nil, []byte(deep))))
		}, outcome{status: 400, body: ptr(deep), state: StateOK}},
		{"Content-Length longer than the body", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, get(), WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				body := readCloser{io.MultiReader(strings.NewReader("not fou"), errReader{io.ErrUnexpectedEOF}), io.NopCloser(nil)}
				return &http.Response{StatusCode: 404, ContentLength: 1000, Header: http.Header{}, Body: body, Request: r}, nil
			})))
		}, outcome{err: "", status: 404, state: StateOK}},

		// Absurd reset hints: clamped, never negative, never a lock-out.
		{"negative Retry-After", func() (*Transport, *http.Response, error) {
			return roundTrip([]string{keyA}, get(), WithMaxWait(0), WithBase(rateLimited("-30")))
		}, outcome{status: 429, state: StateExhausted, reason: ReasonRateLimit, within: minCooldown}}, // a wait of nothing is the floor
		{"Retry-After in year 9999", func() (*Transport, *http.Response, error) {
			return roundTrip([]string{keyA}, get(), WithMaxWait(0), WithBase(rateLimited("Fri, 31 Dec 9999 23:59:59 GMT")))
		}, outcome{status: 429, state: StateExhausted, reason: ReasonBilling, within: 24 * time.Hour}},
		{"Retry-After NaN", func() (*Transport, *http.Response, error) {
			return roundTrip([]string{keyA}, get(), WithMaxWait(0), WithBase(rateLimited("NaN")))
		}, outcome{status: 429, state: StateExhausted, reason: ReasonRateLimit, within: time.Minute}},
		{"Retry-After 1e30", func() (*Transport, *http.Response, error) {
			return roundTrip([]string{keyA}, get(), WithMaxWait(0), WithBase(rateLimited("1e30")))
		}, outcome{status: 429, state: StateExhausted, reason: ReasonBilling, within: 24 * time.Hour}},
		{"Retry-After overflow in milliseconds", func() (*Transport, *http.Response, error) {
			return roundTrip([]string{keyA}, get(), WithMaxWait(0), WithBase(replying(429,
				http.Header{"Retry-After-Ms": {strconv.FormatFloat(math.MaxFloat64, 'g', -1, 64)}}, []byte(bodyRateLimit))))
		}, outcome{status: 429, state: StateExhausted, reason: ReasonBilling, within: 24 * time.Hour}},

		// Broken base transports.
		{"base returns a response and an error", func() (*Transport, *http.Response, error) {
			return roundTrip([]string{keyA}, get(), WithMaxRetries(0), WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return answer(r, 200, "ok"), errBoom
			})))
		}, outcome{err: "credpool: key sk-…1111: boom", state: StateOK}},
		{"base panics", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, get(), WithBase(roundTripFunc(func(*http.Request) (*http.Response, error) {
				panic("nil map")
			})))
		}, outcome{err: "credpool: key sk-…1111: base RoundTripper panicked: nil map", state: StateOK}},
		{"base panics with the request, key scrubbed", func() (*Transport, *http.Response, error) {
			return roundTrip(keys, get(), WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				panic(errors.New("bad header " + r.Header.Get("Authorization")))
			})))
		}, outcome{err: "credpool: key sk-…1111: base RoundTripper panicked: bad header Bearer sk-…1111", state: StateOK}},
		{"base error quoting the key is scrubbed", func() (*Transport, *http.Response, error) {
			return roundTrip([]string{keyA}, get(), WithMaxRetries(0), WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return nil, &url.Error{Op: "Get", URL: "http://api.test/?key=" + keyA, Err: &net.OpError{Op: "dial", Err: errBoom}}
			})))
		}, outcome{err: `credpool: key sk-…1111: Get "http://api.test/?key=sk-…1111": dial: boom`, state: StateOK}},
		{"context already cancelled", func() (*Transport, *http.Response, error) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return roundTrip(keys, get().WithContext(ctx), WithBase(http.DefaultTransport))
		}, outcome{err: `credpool: key sk-…1111: context canceled`, state: StateOK}},
	}
	require.GreaterOrEqual(t, len(cases), 30)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			done := make(chan struct{})
			var tr *Transport
			var resp *http.Response
			var err error
			go func() {
				defer close(done)
				tr, resp, err = tc.run()
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("hung")
			}
			if tc.want.err != "" {
				assert.Nil(t, resp)
				require.EqualError(t, err, tc.want.err)
				assertNoSecret(t, "error", err.Error(), keyA, keyB)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.want.status, resp.StatusCode)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if tc.want.body != nil {
					assert.Equal(t, *tc.want.body, string(body))
				}
			}
			if tr == nil || tc.want.state == "" {
				return
			}
			a := statusOf(t, tr, keyA)
			assert.Equal(t, tc.want.state, a.State)
			assert.Equal(t, tc.want.reason, a.Reason)
			if tc.want.within > 0 {
				assert.False(t, a.ResetAt.After(start.Add(tc.want.within+time.Second)), "reset %v is clamped", a.ResetAt)
			}
		})
	}
}

// TestStalledErrorBody: an upstream that sends an error's headers and then
// stalls its body holds the request no longer than the classifier's wait;
// the verdict then goes by status and headers, and the caller who gets that
// response can still read what comes, or close it.
func TestStalledErrorBody(t *testing.T) {
	release := make(chan struct{})
	stall := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
		w.(http.Flusher).Flush()
		select {
		case <-release:
			io.WriteString(w, `{"error":{"message":"late"}}`)
		case <-r.Context().Done():
		}
	}
	t.Run("rotates past it", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.Header.Get("Authorization"), keyA) {
				stall(w, r)
				return
			}
			io.WriteString(w, "ok")
		}))
		defer srv.Close()
		tr := newTransport(t, []string{keyA, keyB}, WithStrategy(FillFirst))
		tr.cfg.errorBodyWait = 50 * time.Millisecond
		start := time.Now()
		status, body := get(t, tr, srv.URL)
		assert.Equal(t, 200, status)
		assert.Equal(t, "ok", body)
		assert.Less(t, time.Since(start), 2*time.Second)
		a := statusOf(t, tr, keyA)
		assert.Equal(t, ReasonRateLimit, a.Reason, "classified by status")
		assert.WithinDuration(t, time.Now().Add(30*time.Second), a.ResetAt, 2*time.Second, "and by headers")
	})
	t.Run("hands it back readable", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(stall))
		defer srv.Close()
		tr := newTransport(t, []string{keyA}, WithMaxWait(0))
		tr.cfg.errorBodyWait = 50 * time.Millisecond
		resp, err := tr.RoundTrip(httptestRequest(t, srv.URL))
		require.NoError(t, err)
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		close(release)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, `{"error":{"message":"late"}}`, string(b))
		resp.Body.Close()
	})
}

// TestZeroRetryAfterDoesNotLoop: a 429 that says "retry after 0" (or a date
// already past) cools the key for a moment, minCooldown, instead of leaving
// it in rotation for the same request to hit again at once.
func TestZeroRetryAfterDoesNotLoop(t *testing.T) {
	for _, ra := range []string{"0", "Thu, 01 Jan 1970 00:00:00 GMT", "-5"} {
		t.Run(ra, func(t *testing.T) {
			p := newProvider(t, func(string, int) reply {
				return reply{status: 429, header: map[string]string{"Retry-After": ra}, body: bodyRateLimit}
			})
			tr := newTransport(t, []string{keyA, keyB}, WithMaxWait(0))
			status, _ := get(t, tr, p.URL)
			assert.Equal(t, 429, status)
			assert.Len(t, p.keys(), 2, "each key once")
			for _, s := range tr.Keys() {
				assert.Equal(t, StateExhausted, s.State)
				assert.WithinDuration(t, time.Now().Add(minCooldown), s.ResetAt, minCooldown)
			}
		})
	}
}
