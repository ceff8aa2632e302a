package credpool

import (
	"fmt"
	"net/http"
	"testing"
)

// The comparisons with other libraries, every strategy at 10,000 keys and
// failover live in the bench module (cd bench && ./run). These are the
// benchmarks that need the package's insides: each pairs credpool with a
// baseline in the same run.

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

var sinkLease lease

// BenchmarkChoice is the key choice alone, an attempt's lease on a key, for
// each strategy with 1 and 10,000 keys: the part of the success path that
// depends on the size of the pool. Without the request's allocations around
// it, it is steady enough to show that no strategy scans the pool.
func BenchmarkChoice(b *testing.B) {
	for _, s := range []Strategy{RoundRobin, FillFirst, LeastUsed, Random} {
		for _, n := range []int{1, 10000} {
			tr, err := New(benchKeys(n), WithStrategy(s))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("strategy=%s/keys=%d", s, n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					l, _, ok := tr.pool.acquire(-1)
					if !ok {
						b.Fatal("no key")
					}
					sinkLease = l
				}
			})
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
