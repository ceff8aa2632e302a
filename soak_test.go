package credpool

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
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

// soakFor is how long TestChaosSoak runs. It is opt-in: it would take most
// of a plain `go test`, so CI runs it apart, at full length:
// go test -race -run TestChaosSoak -soak 30s .
var soakFor = flag.Duration("soak", 0, "run TestChaosSoak for this long, e.g. 30s (it is skipped without)")

// The chaos soak puts one Transport between dozens of goroutines and a fake
// provider that fails in every way a provider fails, and checks at the end
// that every request came to an allowed outcome, that dead keys stayed dead,
// that no key leaked, and that nothing was left running.
const (
	soakKeys    = 20
	soakRevoked = 10 // revoked one by one over the run
	soakWorkers = 32
	limitWindow = 250 * time.Millisecond
	limitPerKey = 25 // requests per key per window before a 429
)

// chaosProvider is the fake provider. Every decision it makes is random but
// seeded, and it counts what it did.
type chaosProvider struct {
	keys     []string
	start    time.Time
	duration time.Duration
	otherURL string

	mu       sync.Mutex
	rng      *rand.Rand
	window   map[string][2]int64 // key -> {window number, count in it}
	killedAt map[string]time.Time
	late     map[string]int           // attempts with a key after credpool killed it
	lateness map[string]time.Duration // the latest such attempt after the kill
	unkeyed  int
	did      map[string]int
	told     map[int]int // times each key was answered "revoked"
}

func (p *chaosProvider) roll() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Float64()
}

func (p *chaosProvider) count(what string) {
	p.mu.Lock()
	p.did[what]++
	p.mu.Unlock()
}

// revoked reports whether the provider has revoked key i by now: key i of the
// first soakRevoked is revoked at (i+1)/(soakRevoked+1) of the run.
func (p *chaosProvider) revoked(i int) bool {
	return i < soakRevoked && time.Since(p.start) > p.duration*time.Duration(i+1)/time.Duration(soakRevoked+1)
}

func (p *chaosProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	payload, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/redirect-same":
		p.count("redirect same host")
		http.Redirect(w, r, "/v1/chat", http.StatusTemporaryRedirect)
		return
	case "/redirect-other":
		p.count("redirect other host")
		http.Redirect(w, r, p.otherURL+"/v1/chat", http.StatusTemporaryRedirect)
		return
	}
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	i := p.index(key)
	if i < 0 {
		p.mu.Lock()
		p.unkeyed++
		p.mu.Unlock()
		p.fail(w, 401, nil, `{"error":{"message":"No auth credentials found","code":401}}`)
		return
	}
	p.noteLate(key)
	if p.revoked(i) {
		p.count("revoked")
		p.mu.Lock()
		p.told[i]++
		p.mu.Unlock()
		p.fail(w, []int{401, 401, 400, 403}[i%4], nil, deadBodies[i%len(deadBodies)])
		return
	}
	roll := p.roll()
	switch {
	case r.Header.Get("X-Chaos-Deadline") != "" && roll < 0.04:
		p.count("stall past deadline")
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
		return
	case roll < 0.01:
		p.count("connection reset")
		p.reset(w, roll < 0.005)
		return
	case p.burst() && roll < 0.4:
		p.count("5xx/529 burst")
		if roll < 0.2 {
			p.fail(w, 529, nil, bodyOverloaded)
		} else {
			p.fail(w, 503, http.Header{"Retry-After": {"0"}}, `<html><body><h1>503 Service Unavailable</h1></body></html>`)
		}
		return
	case roll > 0.995:
		p.count("huge client error")
		p.fail(w, 400, nil, `{"error":{"message":"`+strings.Repeat("context ", 128<<10)+`","code":"context_length_exceeded"}}`)
		return
	case roll > 0.99:
		p.count("malformed 500")
		p.fail(w, 500, nil, `{"error":{"message":"unterminated`)
		return
	}
	if n, wait := p.take(key); n > limitPerKey {
		p.count("rate limited")
		header, body := limitedReply(i, wait)
		p.fail(w, 429, header, body)
		return
	} else if n == limitPerKey {
		p.count("steered")
		w.Header().Set("X-Ratelimit-Remaining-Requests", "0")
		w.Header().Set("X-Ratelimit-Reset-Requests", wait.String())
	}
	p.succeed(w, r, payload)
}

func (p *chaosProvider) index(key string) int {
	for i, k := range p.keys {
		if k == key {
			return i
		}
	}
	return -1
}

// noteLate counts an attempt with a key credpool had already killed.
func (p *chaosProvider) noteLate(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if at, ok := p.killedAt[key]; ok {
		p.late[key]++
		p.lateness[key] = max(p.lateness[key], time.Since(at))
	}
}

// burst is true for the first 600 ms of every 4 s: a 5xx/529 storm.
func (p *chaosProvider) burst() bool {
	return time.Since(p.start)%(4*time.Second) < 600*time.Millisecond
}

// take counts a request with key in its current window and returns the count
// and the time until the window ends.
func (p *chaosProvider) take(key string) (int, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	elapsed := time.Since(p.start)
	n := int64(elapsed / limitWindow)
	c := p.window[key]
	if c[0] != n {
		c = [2]int64{n, 0}
	}
	c[1]++
	p.window[key] = c
	return int(c[1]), limitWindow*time.Duration(n+1) - elapsed
}

// limitedReply gives a 429 in one of the reset formats providers use, by key.
func limitedReply(i int, wait time.Duration) (http.Header, string) {
	at := time.Now().Add(wait)
	secs := strconv.Itoa(int(wait/time.Second) + 1)
	switch i % 8 {
	case 0:
		return http.Header{"Retry-After": {secs}}, bodyRateLimit
	case 1:
		return http.Header{"Retry-After-Ms": {strconv.FormatInt(wait.Milliseconds()+1, 10)}}, bodyRateLimit
	case 2:
		return http.Header{"Retry-After": {at.Add(time.Second).UTC().Format(http.TimeFormat)}}, bodyRateLimit
	case 3:
		return http.Header{"X-Ratelimit-Remaining-Requests": {"0"}, "X-Ratelimit-Reset-Requests": {wait.String()}}, bodyRateLimit
	case 4:
		return http.Header{"Anthropic-Ratelimit-Requests-Remaining": {"0"}, "Anthropic-Ratelimit-Requests-Reset": {at.Add(time.Second).UTC().Format(time.RFC3339)}},
			`{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit."}}`
	case 5:
		return http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(at.Unix()+1, 10)}},
			`{"message":"API rate limit exceeded for user ID 1."}`
	case 6:
		return nil, fmt.Sprintf(`{"error":{"message":"Rate limit reached. Please try again in %.3fs.","code":"rate_limit_exceeded"}}`, wait.Seconds())
	}
	return nil, fmt.Sprintf(`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"quota","details":[`+
		`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel"}]},`+
		`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"%.3fs"}]}}`, wait.Seconds())
}

var deadBodies = []string{
	bodyInvalidKey, bodyRevoked, bodyDeactivated,
	`{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}`,
	`{"code":"Client specified an invalid argument","error":"Incorrect%20API%20key%20provided"}`,
}

// fail sends an error response whose body the caller can check: its digest
// travels in a header.
func (p *chaosProvider) fail(w http.ResponseWriter, status int, h http.Header, body string) {
	for k, v := range h {
		w.Header()[k] = v
	}
	sum := sha256.Sum256([]byte(body))
	w.Header().Set("X-Body-Sha256", hex.EncodeToString(sum[:]))
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// reset drops the connection: before any response, or in the middle of an
// error body whose Content-Length promises more.
func (p *chaosProvider) reset(w http.ResponseWriter, beforeHeaders bool) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if !beforeHeaders {
		buf.WriteString("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1000\r\nX-Cut: 1\r\n\r\n{\"error\":{\"mess")
		buf.Flush()
	}
	conn.Close()
}

// succeed echoes the request's payload, as JSON or as a stream of events.
func (p *chaosProvider) succeed(w http.ResponseWriter, r *http.Request, payload []byte) {
	if r.URL.Query().Get("stream") == "" {
		p.count("success")
		fmt.Fprintf(w, `{"echo":%q}`, payload)
		return
	}
	p.count("stream")
	w.Header().Set("Content-Type", "text/event-stream")
	for _, part := range []string{"start", string(payload), "[DONE]"} {
		fmt.Fprintf(w, "data: %s\n\n", part)
		w.(http.Flusher).Flush()
	}
}

// otherHost stands for a host the keys are not meant for. It records every
// credential it is sent.
type otherHost struct {
	mu   sync.Mutex
	seen []string
}

func (o *otherHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	payload, _ := io.ReadAll(r.Body)
	o.mu.Lock()
	o.seen = append(o.seen, r.Header.Get("Authorization")+r.Header.Get("X-Api-Key"))
	o.mu.Unlock()
	fmt.Fprintf(w, `{"echo":%q}`, payload)
}

// soakTally is what the callers saw.
type soakTally struct {
	mu         sync.Mutex
	outcomes   map[string]int
	violations []string
	errs       []string
}

func (s *soakTally) add(outcome string) {
	s.mu.Lock()
	s.outcomes[outcome]++
	s.mu.Unlock()
}

func (s *soakTally) violate(format string, args ...any) {
	s.mu.Lock()
	if len(s.violations) < 20 {
		s.violations = append(s.violations, fmt.Sprintf(format, args...))
	}
	s.outcomes["VIOLATION"]++
	s.mu.Unlock()
}

func TestChaosSoak(t *testing.T) {
	duration := *soakFor
	if duration <= 0 {
		t.Skip("the chaos soak is opt-in: go test -race -run TestChaosSoak -soak 30s .")
	}
	keys := make([]string, soakKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("sk-soak-%026d%04d", i*7919, i)
	}
	other := &otherHost{}
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()
	p := &chaosProvider{
		keys: keys, duration: duration, otherURL: strings.Replace(otherSrv.URL, "127.0.0.1", "localhost", 1),
		rng: rand.New(rand.NewPCG(1, 2)), window: map[string][2]int64{}, killedAt: map[string]time.Time{},
		late: map[string]int{}, lateness: map[string]time.Duration{}, did: map[string]int{}, told: map[int]int{},
	}
	srv := httptest.NewServer(p)
	defer srv.Close()

	var logs syncBuffer
	var revivals atomic.Int32
	base := &http.Transport{MaxIdleConnsPerHost: soakWorkers}
	tr := newTransport(t, keys, WithBase(base), WithMaxRetries(5), WithMaxWait(2*time.Second),
		WithBackoff(func() backoff.BackOff {
			return backoff.NewExponentialBackOff(backoff.WithInitialInterval(5*time.Millisecond), backoff.WithMaxInterval(100*time.Millisecond), backoff.WithMaxElapsedTime(0))
		}),
		WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))),
		WithOnStateChange(func(c StateChange) {
			if c.From == StateDead {
				revivals.Add(1)
			}
			if c.To == StateDead {
				p.mu.Lock()
				p.killedAt[keys[c.Index]] = time.Now()
				p.mu.Unlock()
			}
		}))
	client := &http.Client{Transport: tr}

	var heapPeak atomic.Uint64
	stopSampling := sampleHeap(&heapPeak)
	tally := &soakTally{outcomes: map[string]int{}}
	p.start = time.Now()
	var wg sync.WaitGroup
	var sent, swaps atomic.Int64
	wg.Go(func() {
		// An operator rotating secrets all along: the same keys, so that
		// every invariant below holds by index, but a new generation of
		// the pool every few milliseconds, under the requests in flight.
		for time.Since(p.start) < duration {
			assert.NoError(t, tr.SetKeys(keys))
			swaps.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	})
	for w := 0; w < soakWorkers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; time.Since(p.start) < duration; i++ {
				sent.Add(1)
				soakRequest(client, srv.URL, fmt.Sprintf("w%02d-%06d-%08x", w, i, rng.Uint32()), rng, tally)
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(p.start)
	stopSampling()
	base.CloseIdleConnections()

	stats := tr.Stats()
	states := map[State]int{}
	for _, s := range tr.Keys() {
		states[s.State]++
	}
	t.Logf("chaos soak: %d requests in %s by %d goroutines over %d keys (%d revoked during the run)",
		sent.Load(), elapsed.Round(time.Millisecond), soakWorkers, soakKeys, soakRevoked)
	t.Logf("  outcomes:  %v", sortedCounts(tally.outcomes))
	t.Logf("  provider:  %v", sortedCounts(p.did))
	t.Logf("  transport: attempts %d, rotations %d, retries %d, waits %d (%s waited), kills %d, failures %v",
		stats.Attempts, stats.Rotations, stats.Retries, stats.Waits, stats.Waited.Round(time.Millisecond),
		states[StateDead], sortedReasons(stats.Failures))
	t.Logf("  heap peak %d MiB, goroutines at end %d, key sets swapped in %d times", heapPeak.Load()>>20, runtime.NumGoroutine(), swaps.Load())

	assert.Empty(t, tally.violations, "every request ends in an allowed outcome")
	assert.Zero(t, p.unkeyed, "no request reaches the provider without a key")
	assert.Zero(t, revivals.Load(), "no dead key revives without Reset")
	for i, s := range tr.Keys() {
		p.mu.Lock()
		told := p.told[i]
		p.mu.Unlock()
		switch {
		case i < soakRevoked && told >= 3:
			// A key told once may have been the second in a request whose
			// first key paid for words already (see call.penalize); three
			// times is past any such chance.
			assert.Equal(t, StateDead, s.State, "key %d was revoked, and told so %d times", i, told)
		case i < soakRevoked:
			// Told less: still cooling from before its revocation (strikes
			// lengthen a busy key's cooldowns), or revoked at the very end.
		default:
			assert.NotEqual(t, StateDead, s.State, "key %d was never revoked", i)
		}
	}
	p.mu.Lock()
	for key, n := range p.late {
		// Only attempts already in flight when a key was killed may reach the
		// provider after: at most one per goroutine, and soon.
		assert.LessOrEqual(t, n, soakWorkers, "attempts with %s after its kill", redact(key))
		assert.Less(t, p.lateness[key], 2*time.Second, "latest attempt with %s after its kill", redact(key))
	}
	p.mu.Unlock()
	other.mu.Lock()
	for _, cred := range other.seen {
		assert.Empty(t, cred, "the other host was sent a credential")
	}
	assert.NotEmpty(t, other.seen, "the other host was reached")
	other.mu.Unlock()
	assertNoSecret(t, "errors", strings.Join(tally.errs, "\n"), keys...)
	assertNoSecret(t, "logs", logs.String(), keys...)
	assert.Contains(t, logs.String(), `"to":"dead"`)
	assert.Less(t, heapPeak.Load(), uint64(512<<20), "memory stays bounded")
	require.Greater(t, tally.outcomes["success"], 0)
}

// soakRequest sends one POST with a unique payload and judges its outcome.
func soakRequest(client *http.Client, url, payload string, rng *rand.Rand, tally *soakTally) {
	path := "/v1/chat"
	switch r := rng.Float64(); {
	case r < 0.08:
		path = "/v1/chat?stream=1"
	case r < 0.12:
		path = "/redirect-same"
	case r < 0.16:
		path = "/redirect-other"
	}
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	deadline := false
	switch r := rng.Float64(); {
	case r < 0.10:
		ctx, cancel = context.WithTimeout(ctx, time.Duration(200+rng.IntN(800))*time.Millisecond)
		deadline = true
	case r < 0.15:
		ctx, cancel = context.WithCancel(ctx)
		time.AfterFunc(time.Duration(rng.IntN(100))*time.Millisecond, cancel)
		deadline = true
	}
	defer cancel()
	var body io.Reader = strings.NewReader(payload)
	if rng.Float64() < 0.3 && !strings.HasPrefix(path, "/redirect") {
		// No GetBody: credpool buffers it. (http.Client cannot follow a 307
		// without GetBody, so redirected requests always have one.)
		body = io.NopCloser(body)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+path, body)
	if deadline {
		req.Header.Set("X-Chaos-Deadline", "1")
	}
	resp, err := client.Do(req)
	switch {
	case err != nil:
		tally.mu.Lock()
		tally.errs = append(tally.errs, err.Error())
		tally.mu.Unlock()
		var nk *NoKeysError
		switch {
		case deadline && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
			tally.add("caller's context")
		case errors.As(err, &nk) && nk.OK == 0:
			tally.add("no usable key")
		default:
			tally.violate("%s: unexpected error: %v", payload, err)
		}
		return
	}
	defer resp.Body.Close()
	got, readErr := io.ReadAll(resp.Body)
	switch {
	case readErr != nil && deadline:
		tally.add("caller's context") // the deadline ended the read
	case resp.StatusCode == 200 && readErr == nil && bytes.Contains(got, []byte(payload)):
		tally.add("success")
	case resp.StatusCode >= 400 && resp.Header.Get("X-Cut") != "":
		tally.add("provider error, cut by a reset")
	case resp.StatusCode >= 400 && readErr == nil && digest(got) == resp.Header.Get("X-Body-Sha256"):
		tally.add(fmt.Sprintf("provider error %d", resp.StatusCode))
	default:
		tally.violate("%s: status %d, read error %v, body %.80q", payload, resp.StatusCode, readErr, got)
	}
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sampleHeap records the peak heap in use until the returned func is called.
func sampleHeap(peak *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

func sortedCounts(m map[string]int) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	return b.String()
}

func sortedReasons(m map[Reason]uint64) string {
	counts := make(map[string]int, len(m))
	for r, n := range m {
		counts[string(r)] = int(n)
	}
	return sortedCounts(counts)
}
