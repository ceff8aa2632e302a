package credpool

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// cannedOK is an in-memory base transport that answers 200 at once, so the
// benchmarks measure the middleware and nothing else.
type cannedOK struct{}

func (cannedOK) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

func benchRequest() *http.Request {
	req, _ := http.NewRequest(http.MethodGet, "https://api.openai.com/v1/models", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bench")
	return req
}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("sk-bench-%032d", i)
	}
	return keys
}

func runSuccess(b *testing.B, rt http.RoundTripper) {
	req := benchRequest()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := rt.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err)
		}
	}
}

// floor is the least a correct header-injecting RoundTripper can do: copy
// the request struct and its header map, set one precomputed header value,
// call the base, check the status.
type floor struct {
	base  http.RoundTripper
	name  string
	value []string
}

func (f floor) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := new(http.Request)
	*r2 = *r
	r2.Header = make(http.Header, len(r.Header)+1)
	for k, v := range r.Header {
		r2.Header[k] = v
	}
	r2.Header[f.name] = f.value
	resp, err := f.base.RoundTrip(r2)
	if err == nil && resp.StatusCode >= 400 {
		return resp, nil // a real one would act here
	}
	return resp, err
}

// BenchmarkSuccess measures the success path: bare is the base alone, the
// baseline every other row is read against; floor is the least any
// header-injecting RoundTripper can do.
func BenchmarkSuccess(b *testing.B) {
	b.Run("bare", func(b *testing.B) { runSuccess(b, cannedOK{}) })
	b.Run("floor", func(b *testing.B) {
		runSuccess(b, floor{base: cannedOK{}, name: "Authorization", value: []string{"Bearer " + benchKeys(1)[0]}})
	})
	for _, n := range []int{1, 10000} {
		for _, s := range []Strategy{RoundRobin, FillFirst, LeastUsed, Random} {
			tr, err := New(benchKeys(n), WithBase(cannedOK{}), WithStrategy(s))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("credpool/keys=%d/%s", n, s), func(b *testing.B) { runSuccess(b, tr) })
		}
	}
}

// BenchmarkSteering measures the success path when responses carry the
// rate-limit headers proactive steering reads, against the same base alone.
func BenchmarkSteering(b *testing.B) {
	h := http.Header{
		"Content-Type":                   {"application/json"},
		"X-Ratelimit-Limit-Requests":     {"10000"},
		"X-Ratelimit-Remaining-Requests": {"9999"},
		"X-Ratelimit-Reset-Requests":     {"6ms"},
		"X-Ratelimit-Remaining-Tokens":   {"1999000"},
		"X-Ratelimit-Reset-Tokens":       {"30ms"},
	}
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody, Request: r}, nil
	})
	tr, err := New(benchKeys(1), WithBase(base))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("bare", func(b *testing.B) { runSuccess(b, base) })
	b.Run("credpool", func(b *testing.B) { runSuccess(b, tr) })
}

// BenchmarkSuccessParallel is the success path under contention for the
// pool's lock.
func BenchmarkSuccessParallel(b *testing.B) {
	tr, err := New(benchKeys(100), WithBase(cannedOK{}))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := benchRequest()
		for pb.Next() {
			if _, err := tr.RoundTrip(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFailover measures a request whose first key is revoked: one
// wasted round trip, the key killed, success on the next.
func BenchmarkFailover(b *testing.B) {
	body := `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`
	revoked := "Bearer " + benchKeys(1)[0]
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Header.Get("Authorization") == revoked {
			return &http.Response{StatusCode: 401, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	req := benchRequest()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tr, _ := New(benchKeys(2), WithBase(base), WithStrategy(FillFirst))
		b.StartTimer()
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreAttached is the success path with and without a Store: the
// store must cost nothing there, neither time nor allocations nor calls.
func BenchmarkStoreAttached(b *testing.B) {
	plain, err := New(benchKeys(2), WithBase(cannedOK{}))
	if err != nil {
		b.Fatal(err)
	}
	store := newMemStore()
	shared, err := New(benchKeys(2), WithBase(cannedOK{}), WithStore(store))
	if err != nil {
		b.Fatal(err)
	}
	defer shared.Close()
	b.Run("store=none", func(b *testing.B) { runSuccess(b, plain) })
	b.Run("store=attached", func(b *testing.B) { runSuccess(b, shared) })
	if n := store.saves.Load(); n != 0 {
		b.Fatalf("%d store calls on the success path", n)
	}
}
