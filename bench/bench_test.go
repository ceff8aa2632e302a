// Package bench measures credpool beside what a Go user would otherwise pick,
// in one run: the base transport alone, the least a header-injecting
// RoundTripper can do, golang.org/x/oauth2's Transport and go-retryablehttp's
// RoundTripper. It is a module of its own so that the core gains no
// dependencies. Run it with ./run (see the README's Performance section).
package bench

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
// the base, check the status. It copies the map with maps.Clone, which copies
// the map's table without hashing each name again, as credpool does: a copy
// loop over the names costs more, and would flatter every other row.
type floor struct {
	base  http.RoundTripper
	value []string
}

func (f floor) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := new(http.Request)
	*r2 = *r
	if r2.Header = maps.Clone(r.Header); r2.Header == nil {
		r2.Header = make(http.Header, 1)
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

// round rotates the order in which the rows of a benchmark run: ./run passes
// each round's number, so that no row always runs in the same place, after
// the same neighbour.
var round = flag.Int("round", 0, "rotate the order of the rows by this many places")

// rotated returns rows rotated by -round places.
func rotated[T any](rows []T) []T {
	k := *round % len(rows)
	return append(rows[k:len(rows):len(rows)], rows[:k]...)
}

// impl is one row of a comparison.
type impl struct {
	name string
	rt   http.RoundTripper
}

// retrying is go-retryablehttp's RoundTripper over base, silent and with zero
// waits between attempts, so that a retry costs only its work.
func retrying(base http.RoundTripper) *retryablehttp.RoundTripper {
	c := retryablehttp.NewClient()
	c.HTTPClient = &http.Client{Transport: base}
	c.Logger = nil
	c.RetryWaitMin, c.RetryWaitMax = 0, 0
	return &retryablehttp.RoundTripper{Client: c}
}

// impls are the rows every success benchmark compares.
func impls(tb testing.TB) []impl {
	return rotated([]impl{
		{"bare", canned{}},
		{"floor", floor{base: canned{}, value: []string{"Bearer " + keys(1)[0]}}},
		{"oauth2", &oauth2.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: keys(1)[0]}), Base: canned{}}},
		{"retryablehttp", retrying(canned{})},
		{"credpool", newCredpool(tb, 1)},
	})
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

// BenchmarkSuccessPaired runs the rows of BenchmarkSuccess side by side: in
// turns of 64 requests each, every row in every turn, with the first place
// passing from row to row. Each row's time is the sum of its turns, so a noisy
// moment on a shared machine falls on every row alike, within microseconds,
// instead of on the rows that ran then: the ratios it gives are steadier
// than those of rows measured one after the other. An op is one request on
// every row; ns/<row> is one row's time per request.
func BenchmarkSuccessPaired(b *testing.B) {
	takeTurns(b, impls(b))
}

// takeTurns runs rows side by side, in turns of 64 requests each, and
// reports each row's time per request as ns/<row>. A request must end in 200.
func takeTurns(b *testing.B, rows []impl) []time.Duration {
	const turn = 64
	req := request()
	spent := make([]time.Duration, len(rows))
	b.ReportAllocs()
	b.ResetTimer()
	for done, t := 0, 0; done < b.N; done, t = done+turn, t+1 {
		n := min(turn, b.N-done)
		for k := range rows {
			i := (k + t) % len(rows)
			rt := rows[i].rt
			start := time.Now()
			for j := 0; j < n; j++ {
				if resp, err := rt.RoundTrip(req); err != nil || resp.StatusCode != 200 {
					b.Fatal(resp, err)
				}
			}
			spent[i] += time.Since(start)
		}
	}
	for i, r := range rows {
		b.ReportMetric(float64(spent[i])/float64(b.N), "ns/"+r.name)
	}
	return spent
}

// BenchmarkSuccessParallel is the success path from every core at once.
func BenchmarkSuccessParallel(b *testing.B) {
	for _, impl := range impls(b) {
		b.Run("impl="+impl.name, func(b *testing.B) { parallel(b, impl.rt) })
	}
}

var strategies = []credpool.Strategy{credpool.RoundRobin, credpool.FillFirst, credpool.LeastUsed, credpool.Random}

// BenchmarkStrategy is the success path of each strategy with 1 and with
// 10,000 keys: a choice must not scan the pool. Every pool is built before
// the first row runs and lives until the last, so that every row runs over the
// same live heap: a 10,000-key pool is a few megabytes that the collector
// marks on every cycle, and a row that alone carried it would measure the
// collector, not the choice.
func BenchmarkStrategy(b *testing.B) {
	type row struct {
		name string
		tr   *credpool.Transport
	}
	var rows []row
	for _, s := range strategies {
		for _, n := range []int{1, 10000} {
			rows = append(rows, row{fmt.Sprintf("strategy=%s/keys=%d", s, n), newCredpool(b, n, credpool.WithStrategy(s))})
		}
	}
	for _, r := range rotated(rows) {
		b.Run(r.name, func(b *testing.B) { serial(b, r.tr) })
		b.Run(r.name+"/parallel", func(b *testing.B) { parallel(b, r.tr) })
	}
	runtime.KeepAlive(rows)
}

// BenchmarkLoopback is end to end over loopback HTTP with keep-alive and 64
// concurrent clients: credpool over an http.Transport against an identical
// http.Transport alone, both on one server. The two take turns, a batch of
// requests each, first one and then the other going first, so that neither
// gains from its place or from a quieter moment: on a shared machine, that
// matters more than the difference being measured. An op is one request of each; ns/bare-req and ns/credpool-req are
// the wall time per request of each over all clients, so their inverses are
// the throughputs, and credpool/bare is their ratio.
func BenchmarkLoopback(b *testing.B) {
	const clients, batch = 64, 1024
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"object":"list","data":[]}`)
	}))
	defer srv.Close()
	bare := &http.Transport{MaxIdleConnsPerHost: clients}
	defer bare.CloseIdleConnections()
	base := &http.Transport{MaxIdleConnsPerHost: clients}
	defer base.CloseIdleConnections()
	tr, err := credpool.New(keys(8), credpool.WithBase(base))
	if err != nil {
		b.Fatal(err)
	}
	impls := []*http.Client{{Transport: bare}, {Transport: tr}}
	// Long-lived workers, as a server's goroutines would be, so that no row
	// pays for starting goroutines; each takes its share of a batch. Every
	// request carries a key, as an SDK's does: the bare row sends it as it is,
	// credpool replaces it with one of its own, of the same length, so that
	// both rows put the same bytes on the wire.
	key := "Bearer " + keys(1)[0]
	type share struct {
		client *http.Client
		n      int
	}
	work := make(chan share)
	var wg sync.WaitGroup
	for g := 0; g < clients; g++ {
		go func() {
			for s := range work {
				for ; s.n > 0; s.n-- {
					req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
					if err != nil {
						b.Error(err)
						break
					}
					req.Header.Set("Authorization", key)
					resp, err := s.client.Do(req)
					if err != nil {
						b.Error(err)
						break
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				wg.Done()
			}
		}()
	}
	defer close(work)
	load := func(c *http.Client, n int) time.Duration {
		start := time.Now()
		wg.Add(clients)
		for g := 0; g < clients; g++ {
			work <- share{c, (n + g) / clients}
		}
		wg.Wait()
		return time.Since(start)
	}
	for _, c := range impls { // connect every client before timing
		load(c, clients)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var spent [2]time.Duration
	for done, turn := 0, 0; done < b.N; done, turn = done+batch, turn+1 {
		n := min(batch, b.N-done)
		for k := range impls { // each goes first every other turn: ABBA
			i := (k + turn) % len(impls)
			spent[i] += load(impls[i], n)
		}
	}
	perReq := func(d time.Duration) float64 { return float64(d) / float64(b.N) }
	b.ReportMetric(perReq(spent[0]), "ns/bare-req")
	b.ReportMetric(perReq(spent[1]), "ns/credpool-req")
	b.ReportMetric(float64(spent[0])/float64(spent[1]), "credpool/bare")
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

// overloaded is a 503 of OpenAI's, the provider's trouble: retried on the
// same key after a backoff, by credpool and go-retryablehttp alike.
const overloaded = `{"error":{"message":"The server is overloaded","type":"server_error"}}`

// recovering is credpool over base with zero waits: keys come back at once (a
// cooldown of at most a microsecond) and backoffs are zero, so that every
// operation measures one rotation or one retry, never a wait.
func recovering(tb testing.TB, base http.RoundTripper) *credpool.Transport {
	tr, err := credpool.New(keys(2), credpool.WithBase(base), credpool.WithMaxCooldown(time.Microsecond),
		credpool.WithBackoff(func() backoff.BackOff { return &backoff.ZeroBackOff{} }))
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

// BenchmarkRecovery measures the allocations and time of a 429 that rotates
// to another key, and of a 503 retried after a zero backoff, by credpool and
// by go-retryablehttp, which retries it the same way.
func BenchmarkRecovery(b *testing.B) {
	rotation := &flaky{status: 429, header: http.Header{"Retry-After": {"0"}},
		body: `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`}
	b.Run("case=429-rotation", func(b *testing.B) { serial(b, recovering(b, rotation)) })
	for _, r := range retries(b) {
		b.Run("case=5xx-retry/impl="+r.name, func(b *testing.B) { serial(b, r.rt) })
	}
}

// BenchmarkRecoveryPaired is the 503 retried of BenchmarkRecovery, by credpool
// and by go-retryablehttp taking turns as BenchmarkSuccessPaired's rows do:
// credpool/retryablehttp is the ratio of their times, the figure to read.
func BenchmarkRecoveryPaired(b *testing.B) {
	rows := retries(b)
	spent := takeTurns(b, rows)
	if rows[0].name != "credpool" {
		spent[0], spent[1] = spent[1], spent[0]
	}
	b.ReportMetric(float64(spent[0])/float64(spent[1]), "credpool/retryablehttp")
}

// retries are the rows that retry a 503 once, each over a base of its own.
func retries(tb testing.TB) []impl {
	return rotated([]impl{
		{"credpool", recovering(tb, &flaky{status: 503, body: overloaded})},
		{"retryablehttp", retrying(&flaky{status: 503, body: overloaded})},
	})
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
