// Package bench measures credpool beside what a Go user would otherwise pick,
// in one run: the base transport alone, the least a header-injecting
// RoundTripper can do, golang.org/x/oauth2's Transport and go-retryablehttp's
// RoundTripper. It is a module of its own so that the core gains no
// dependencies. Run it with ./run (see the README's Performance section).
package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cenkalti/backoff/v4"
	"github.com/credpool/credpool"
	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/oauth2"
)

// canned is an in-memory base that answers 200 at once, so the rows measure
// the middleware and nothing else.
type canned struct{}

func (canned) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// floor is the least a correct header-injecting RoundTripper can do: copy the
// request struct and its header map, set one precomputed header value, call
// the base, check the status.
type floor struct {
	base  http.RoundTripper
	value []string
}

func (f floor) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := new(http.Request)
	*r2 = *r
	r2.Header = make(http.Header, len(r.Header)+1)
	for k, v := range r.Header {
		r2.Header[k] = v
	}
	r2.Header["Authorization"] = f.value
	resp, err := f.base.RoundTrip(r2)
	if err == nil && resp.StatusCode >= 400 {
		return resp, nil // where a real one would act
	}
	return resp, err
}

func keys(n int) []string {
	k := make([]string, n)
	for i := range k {
		k[i] = fmt.Sprintf("sk-bench-%032d", i)
	}
	return k
}

func newCredpool(tb testing.TB, n int, opts ...credpool.Option) *credpool.Transport {
	tr, err := credpool.New(keys(n), append([]credpool.Option{credpool.WithBase(canned{})}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

// impls are the rows every success benchmark compares, bare first.
func impls(tb testing.TB) []struct {
	name string
	rt   http.RoundTripper
} {
	retrying := retryablehttp.NewClient()
	retrying.HTTPClient = &http.Client{Transport: canned{}}
	retrying.Logger = nil
	return []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", canned{}},
		{"floor", floor{base: canned{}, value: []string{"Bearer " + keys(1)[0]}}},
		{"oauth2", &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: keys(1)[0]}), Base: canned{}}},
		{"retryablehttp", &retryablehttp.RoundTripper{Client: retrying}},
		{"credpool", newCredpool(tb, 1)},
	}
}

func request() *http.Request {
	req, _ := http.NewRequest(http.MethodGet, "https://api.openai.com/v1/models", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bench")
	return req
}

func serial(b *testing.B, rt http.RoundTripper) {
	req := request()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		resp, err := rt.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(resp, err)
		}
	}
}

func parallel(b *testing.B, rt http.RoundTripper) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := request()
		for pb.Next() {
			if resp, err := rt.RoundTrip(req); err != nil || resp.StatusCode != 200 {
				b.Error(resp, err)
				return
			}
		}
	})
}

// BenchmarkSuccess is the success path, one goroutine.
func BenchmarkSuccess(b *testing.B) {
	for _, impl := range impls(b) {
		b.Run("impl="+impl.name, func(b *testing.B) { serial(b, impl.rt) })
	}
}

// BenchmarkSuccessParallel is the success path from every core at once.
func BenchmarkSuccessParallel(b *testing.B) {
	for _, impl := range impls(b) {
		b.Run("impl="+impl.name, func(b *testing.B) { parallel(b, impl.rt) })
	}
}

var strategies = []credpool.Strategy{credpool.RoundRobin, credpool.FillFirst, credpool.LeastUsed, credpool.Random}

// BenchmarkStrategy is the success path of each strategy with 1 and with
// 10,000 keys: a choice must not scan the pool.
func BenchmarkStrategy(b *testing.B) {
	for _, s := range strategies {
		for _, n := range []int{1, 10000} {
			tr := newCredpool(b, n, credpool.WithStrategy(s))
			b.Run(fmt.Sprintf("strategy=%s/keys=%d", s, n), func(b *testing.B) { serial(b, tr) })
			b.Run(fmt.Sprintf("strategy=%s/keys=%d/parallel", s, n), func(b *testing.B) { parallel(b, tr) })
		}
	}
}

// BenchmarkLoopback is end to end over loopback HTTP with keep-alive and 64
// concurrent clients: credpool over an http.Transport against the same
// http.Transport alone. ns/op is wall time per request over all clients, so
// its inverse is throughput.
func BenchmarkLoopback(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"object":"list","data":[]}`)
	}))
	defer srv.Close()
	for _, name := range []string{"bare", "credpool"} {
		base := &http.Transport{MaxIdleConnsPerHost: 64}
		var rt http.RoundTripper = base
		if name == "credpool" {
			tr, err := credpool.New(keys(8), credpool.WithBase(base))
			if err != nil {
				b.Fatal(err)
			}
			rt = tr
		}
		client := &http.Client{Transport: rt}
		b.Run("impl="+name, func(b *testing.B) {
			b.SetParallelism(64 / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(srv.URL)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
		base.CloseIdleConnections()
	}
}

// failing answers 200 to every key but the one it was built to reject, and
// counts the attempts it sees.
type failing struct {
	reject   string
	status   int
	body     string
	attempts atomic.Int64
}

func (f *failing) RoundTrip(r *http.Request) (*http.Response, error) {
	f.attempts.Add(1)
	if r.Header.Get("Authorization") == f.reject {
		return &http.Response{StatusCode: f.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(f.body)), Request: r}, nil
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// BenchmarkFailover is a request whose first key was revoked: the key dies
// on its first 401 and the request succeeds on the second key, with no sleep
// and one extra round trip.
func BenchmarkFailover(b *testing.B) {
	base := &failing{reject: "Bearer " + keys(1)[0], status: 401,
		body: `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`}
	req := request()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tr, err := credpool.New(keys(2), credpool.WithBase(base), credpool.WithStrategy(credpool.FillFirst))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if resp, err := tr.RoundTrip(req); err != nil || resp.StatusCode != 200 {
			b.Fatal(resp, err)
		}
	}
	b.ReportMetric(float64(base.attempts.Load())/float64(b.N), "attempts/op")
}

// flaky answers the first attempt of every request with a canned error and
// the second with 200: the cost of one rotation or one retry.
type flaky struct {
	status int
	header http.Header
	body   string
	calls  int
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	f.calls++
	if f.calls%2 == 1 {
		return &http.Response{StatusCode: f.status, Header: f.header.Clone(), Body: io.NopCloser(strings.NewReader(f.body)), Request: r}, nil
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// BenchmarkRecovery measures the allocations and time of a 429 that rotates
// to another key, and of a 503 retried after a (zero) backoff.
func BenchmarkRecovery(b *testing.B) {
	cases := []struct {
		name string
		base *flaky
	}{
		{"429-rotation", &flaky{status: 429, header: http.Header{"Retry-After": {"0"}},
			body: `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`}},
		{"5xx-retry", &flaky{status: 503, body: `{"error":{"message":"The server is overloaded","type":"server_error"}}`}},
	}
	for _, c := range cases {
		tr, err := credpool.New(keys(2), credpool.WithBase(c.base),
			credpool.WithBackoff(func() backoff.BackOff { return &backoff.ZeroBackOff{} }))
		if err != nil {
			b.Fatal(err)
		}
		b.Run("case="+c.name, func(b *testing.B) { serial(b, tr) })
	}
}

var sink *credpool.Transport

// BenchmarkMemoryPerKey builds a pool of 100,000 keys and reports the heap
// it holds per key, the keys' own strings excluded.
func BenchmarkMemoryPerKey(b *testing.B) {
	const n = 100000
	ks := keys(n)
	var before, after runtime.MemStats
	for i := 0; i < b.N; i++ {
		sink = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr, err := credpool.New(ks)
		if err != nil {
			b.Fatal(err)
		}
		sink = tr
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/key")
	}
	runtime.KeepAlive(sink)
}
