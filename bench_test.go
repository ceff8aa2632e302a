package credpool

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
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
					l, _, ok := tr.pool().acquire(-1, time.Now)
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

// classifyCase is one typical error response for BenchmarkClassify.
type classifyCase struct {
	name   string
	status int
	header http.Header
	body   []byte
	want   Reason
}

// classifyCases are OpenAI's two commonest errors, as testdata/classify has
// them: a 429 whose message states a wait (so the caller's words are read
// too), and a dead key's 401.
var classifyCases = []classifyCase{
	{"429-rate_limit_exceeded", http.StatusTooManyRequests,
		http.Header{"X-Ratelimit-Remaining-Tokens": {"0"}, "X-Ratelimit-Reset-Tokens": {"30s"}},
		[]byte(`{"error":{"message":"Rate limit reached for gpt-4 in organization org-abc123 on tokens per min (TPM): Limit 10000, Used 9348, Requested 5086. Please try again in 26.604s. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`),
		ReasonRateLimit},
	{"401-invalid_api_key", http.StatusUnauthorized, http.Header{},
		[]byte(`{"error":{"message":"Incorrect API key provided: sk-VKMIs***wjh3. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`),
		ReasonAuthPermanent},
}

// chatRequest is a typical request that gets those errors: a chat
// completion, whose body the classifier reads when a verdict rests on words.
func chatRequest() *http.Request {
	body := `{"model":"gpt-4","messages":[{"role":"user","content":"Say hello."}]}`
	req, _ := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bench")
	return req
}

// BenchmarkClassify is the classifier's decision on one error response,
// reading the caller's words afresh as each request's first error does,
// beside the success path as the baseline in the same run: the ratio is the
// figure to read, not the absolute times.
func BenchmarkClassify(b *testing.B) {
	tr, err := New(benchKeys(1), WithBase(cannedOK{}))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("case=success", func(b *testing.B) { runSuccess(b, tr) })
	now := time.Now()
	for _, c := range classifyCases {
		b.Run("case="+c.name, func(b *testing.B) {
			req := chatRequest()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				e := &echo{req: req, skip: [2]string{"Authorization"}, body: replay{getBody: req.GetBody}, limit: 10 << 20}
				if v := defaultClassifier.classify(c.status, c.header, c.body, now, e.echoed); v.reason != c.want {
					b.Fatalf("%s: got %s, want %s", c.name, v.reason, c.want)
				}
			}
		})
	}
}
