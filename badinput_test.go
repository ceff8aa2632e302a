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
		{
			name: "nil keys",
			run:  func() (*Transport, *http.Response, error) { return roundTrip(nil, get()) },
			want: outcome{err: "credpool: invalid key: no keys given"},
		},
		{
			name: "empty key",
			run:  func() (*Transport, *http.Response, error) { return roundTrip([]string{""}, get()) },
			want: outcome{err: "credpool: key 0 is empty"},
		},
		{
			name: "duplicate key",
			run:  func() (*Transport, *http.Response, error) { return roundTrip([]string{keyA, keyA}, get()) },
			want: outcome{err: "credpool: key 1 duplicates key 0"},
		},
		{
			name: "CRLF in key",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip([]string{keyA + "\r\nX-Evil: 1"}, get())
			},
			want: outcome{err: "credpool: key 0 has a space, control or non-ASCII byte at offset 36"},
		},
		{
			name: "unicode space in key",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip([]string{"sk-test\u2003" + keyB}, get())
			},
			want: outcome{err: "credpool: key 0 has a space, control or non-ASCII byte at offset 7"},
		},

		// Options.
		{
			name: "negative retries",
			run:  func() (*Transport, *http.Response, error) { return roundTrip(keys, get(), WithMaxRetries(-1)) },
			want: outcome{err: "credpool: invalid option: WithMaxRetries: -1 is negative"},
		},
		{
			name: "negative wait",
			run:  func() (*Transport, *http.Response, error) { return roundTrip(keys, get(), WithMaxWait(-1)) },
			want: outcome{err: "credpool: invalid option: WithMaxWait: negative duration -1ns"},
		},
		{
			name: "negative cooldown",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, get(), WithCooldown(ReasonAuth, -time.Second))
			},
			want: outcome{err: "credpool: invalid option: WithCooldown: -1s is not positive"},
		},
		{
			name: "zero max cooldown",
			run:  func() (*Transport, *http.Response, error) { return roundTrip(keys, get(), WithMaxCooldown(0)) },
			want: outcome{err: "credpool: invalid option: WithMaxCooldown: 0s is not positive"},
		},
		{
			name: "negative error body limit",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, get(), WithMaxErrorBody(-1))
			},
			want: outcome{err: "credpool: invalid option: WithMaxErrorBody: negative size -1"},
		},
		{
			name: "nil base",
			run:  func() (*Transport, *http.Response, error) { return roundTrip(keys, get(), WithBase(nil)) },
			want: outcome{err: "credpool: invalid option: WithBase: nil RoundTripper"},
		},

		// Requests.
		{
			name: "nil request",
			run:  func() (*Transport, *http.Response, error) { return roundTrip(keys, nil) },
			want: outcome{err: "credpool: nil request"},
		},
		{
			name: "nil URL",
			run: func() (*Transport, *http.Response, error) {
				req := get()
				req.URL = nil
				return roundTrip(keys, req)
			},
			want: outcome{err: "credpool: request has no URL"},
		},
		{
			name: "body that errors on read",
			run: func() (*Transport, *http.Response, error) {
				b := newTrackedBody("x")
				b.readErr = errBoom
				return roundTrip(keys, post(b))
			},
			want: outcome{err: "credpool: reading request body: boom"},
		},
		{
			name: "body that errors on close",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, post(readCloser{
					Reader: strings.NewReader("x"),
					Closer: closerFunc(func() error { return errBoom }),
				}))
			},
			want: outcome{err: "credpool: closing request body: boom"},
		},
		{
			name: "GetBody that fails on replay",
			run: func() (*Transport, *http.Response, error) {
				req := post(strings.NewReader("x"))
				req.GetBody = func() (io.ReadCloser, error) { return nil, errBoom }
				return roundTrip(keys, req, WithBase(replying(401, nil, []byte(bodyInvalidKey))))
			},
			want: outcome{err: "credpool: GetBody: boom", state: StateDead, reason: ReasonAuthPermanent},
		},
		{
			name: "body over the replay limit is sent once",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, post(io.NopCloser(strings.NewReader("0123456789"))), WithMaxReplayBody(4),
					WithBase(replying(401, nil, []byte(bodyInvalidKey))))
			},
			want: outcome{status: 401, body: ptr(bodyInvalidKey), state: StateDead, reason: ReasonAuthPermanent},
		},

		// Responses.
		{
			name: "response with nil body",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, get(), WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
					return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r}, nil
				})))
			},
			want: outcome{status: 200, body: ptr(""), state: StateOK},
		},
		{
			name: "error response with nil body",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, get(), WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
					return &http.Response{StatusCode: 404, Header: http.Header{}, Request: r}, nil
				})))
			},
			want: outcome{status: 404, body: ptr(""), state: StateOK},
		},
		{
			name: "gzip error body is read for its verdict, handed back as sent",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, get(), WithBase(replying(400, http.Header{"Content-Encoding": {"gzip"}}, gzipped(bodyContext))))
			},
			want: outcome{status: 400, body: ptr(string(gzipped(bodyContext))), state: StateOK},
		},
		{
			name: "gzip error body says the key is dead",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip([]string{keyA}, get(), WithBase(replying(401, http.Header{"Content-Encoding": {"gzip"}}, gzipped(bodyRevoked))))
			},
			want: outcome{status: 401, state: StateDead, reason: ReasonAuthPermanent},
		},
		{
			name: "corrupt gzip falls back to the raw bytes",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, get(), WithBase(replying(404, http.Header{"Content-Encoding": {"gzip"}}, []byte("\x1f\x8bnot gzip"))))
			},
			want: outcome{status: 404, body: ptr("\x1f\x8bnot gzip"), state: StateOK},
		},
		{
			name: "invalid UTF-8 in the error",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, get(), WithBase(replying(400, nil, []byte("{\"error\":{\"message\":\"\xff\xfe bad\",\"code\":\"x\"}}"))))
			},
			want: outcome{status: 400, body: ptr("{\"error\":{\"message\":\"\xff\xfe bad\",\"code\":\"x\"}}"), state: StateOK},
		},
		{
			name: "10 MB single-line JSON error is bounded and handed back whole",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, get(), WithBase(replying(400, nil, []byte(huge))))
			},
			want: outcome{status: 400, body: ptr(huge), state: StateOK},
		},
		{
			name: "deeply nested JSON",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, get(), WithMaxErrorBody(2<<20), WithBase(replying(400, nil, []byte(deep))))
			},
			want: outcome{status: 400, body: ptr(deep), state: StateOK},
		},
		{
			name: "Content-Length longer than the body",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, get(), WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
					body := readCloser{
						Reader: io.MultiReader(strings.NewReader("not fou"), errReader{err: io.ErrUnexpectedEOF}),
						Closer: io.NopCloser(nil),
					}
					return &http.Response{StatusCode: 404, ContentLength: 1000, Header: http.Header{}, Body: body, Request: r}, nil
				})))
			},
			want: outcome{err: "", status: 404, state: StateOK},
		},

		// Absurd reset hints: clamped, never negative, never a lock-out.
		{
			name: "negative Retry-After",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip([]string{keyA}, get(), WithMaxWait(0), WithBase(rateLimited("-30")))
			},
			// a wait of nothing is the floor
			want: outcome{status: 429, state: StateExhausted, reason: ReasonRateLimit, within: minCooldown},
		},
		{
			name: "Retry-After in year 9999",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip([]string{keyA}, get(), WithMaxWait(0), WithBase(rateLimited("Fri, 31 Dec 9999 23:59:59 GMT")))
			},
			want: outcome{status: 429, state: StateExhausted, reason: ReasonBilling, within: 24 * time.Hour},
		},
		{
			name: "Retry-After NaN",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip([]string{keyA}, get(), WithMaxWait(0), WithBase(rateLimited("NaN")))
			},
			want: outcome{status: 429, state: StateExhausted, reason: ReasonRateLimit, within: time.Minute},
		},
		{
			name: "Retry-After 1e30",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip([]string{keyA}, get(), WithMaxWait(0), WithBase(rateLimited("1e30")))
			},
			want: outcome{status: 429, state: StateExhausted, reason: ReasonBilling, within: 24 * time.Hour},
		},
		{
			name: "Retry-After overflow in milliseconds",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip([]string{keyA}, get(), WithMaxWait(0), WithBase(replying(429,
					http.Header{"Retry-After-Ms": {strconv.FormatFloat(math.MaxFloat64, 'g', -1, 64)}}, []byte(bodyRateLimit))))
			},
			want: outcome{status: 429, state: StateExhausted, reason: ReasonBilling, within: 24 * time.Hour},
		},

		// Broken base transports.
		{
			name: "base returns a response and an error",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip([]string{keyA}, get(), WithMaxRetries(0), WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
					return answer(r, 200, "ok"), errBoom
				})))
			},
			want: outcome{err: "credpool: key sk-…1111: boom", state: StateOK},
		},
		{
			name: "base panics",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, get(), WithBase(roundTripFunc(func(*http.Request) (*http.Response, error) {
					panic("nil map")
				})))
			},
			want: outcome{err: "credpool: key sk-…1111: base RoundTripper panicked: nil map", state: StateOK},
		},
		{
			name: "base panics with the request, key scrubbed",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip(keys, get(), WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
					panic(errors.New("bad header " + r.Header.Get("Authorization")))
				})))
			},
			want: outcome{err: "credpool: key sk-…1111: base RoundTripper panicked: bad header Bearer sk-…1111", state: StateOK},
		},
		{
			name: "base error quoting the key is scrubbed",
			run: func() (*Transport, *http.Response, error) {
				return roundTrip([]string{keyA}, get(), WithMaxRetries(0), WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
					return nil, &url.Error{Op: "Get", URL: "http://api.test/?key=" + keyA, Err: &net.OpError{Op: "dial", Err: errBoom}}
				})))
			},
			want: outcome{err: `credpool: key sk-…1111: Get "http://api.test/?key=sk-…1111": dial: boom`, state: StateOK},
		},
		{
			name: "context already cancelled",
			run: func() (*Transport, *http.Response, error) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return roundTrip(keys, get().WithContext(ctx), WithBase(http.DefaultTransport))
			},
			want: outcome{err: `credpool: key sk-…1111: context canceled`, state: StateOK},
		},
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
