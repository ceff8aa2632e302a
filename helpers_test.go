package credpool

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Test keys: long enough that labels redact them, unique tails so a label
// names one key.
const (
	keyA = "sk-test-aaaaaaaaaaaaaaaaaaaaaaaa1111"
	keyB = "sk-test-bbbbbbbbbbbbbbbbbbbbbbbb2222"
	keyC = "sk-test-cccccccccccccccccccccccc3333"
)

// reply is what the fake provider answers for one request.
type reply struct {
	status int
	header map[string]string
	body   string
}

// provider is a fake API, on loopback or in memory. It records which key
// each request carried and answers with the reply its rule gives for that key.
type provider struct {
	*httptest.Server        // nil in memory
	URL              string // where to send requests
	mu               sync.Mutex
	seen             []string // key of each request, "" for none, in arrival order
	bodies           []string // request body of each request
	replyTo          func(key string, n int) reply
}

// newProvider starts a provider; rule decides the reply for a key on the n-th
// request that carried it (n counts from 1). A nil rule answers 200 to all.
func newProvider(t *testing.T, rule func(key string, n int) reply) *provider {
	t.Helper()
	if rule == nil {
		rule = func(string, int) reply { return reply{status: 200, body: `{"ok":true}`} }
	}
	p := &provider{replyTo: rule}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.Server.URL
	t.Cleanup(p.Close)
	return p
}

// newMemProvider is a provider in memory, to be the Transport's base
// (WithBase(p)): with no network goroutines, a test inside synctest.Test has
// nothing to wait for but the fake clock, which then moves at once to the
// next timer. rule is as for newProvider.
func newMemProvider(rule func(key string, n int) reply) *provider {
	if rule == nil {
		rule = func(string, int) reply { return reply{status: 200, body: `{"ok":true}`} }
	}
	return &provider{replyTo: rule, URL: "http://provider.test/"}
}

// RoundTrip answers r in memory, as the provider's server would.
func (p *provider) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil {
		r.Body = http.NoBody // as a server's request always has
	}
	rec := httptest.NewRecorder()
	p.serve(rec, r)
	r.Body.Close()
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func (p *provider) serve(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if key == "" {
		key = r.Header.Get("X-Api-Key")
	}
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.seen = append(p.seen, key)
	p.bodies = append(p.bodies, string(body))
	n := 0
	for _, k := range p.seen {
		if k == key {
			n++
		}
	}
	p.mu.Unlock()
	rep := p.replyTo(key, n)
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

// keys returns the key of every request the provider received.
func (p *provider) keys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// count returns how many requests carried key.
func (p *provider) count(key string) int {
	n := 0
	for _, k := range p.keys() {
		if k == key {
			n++
		}
	}
	return n
}

// fastBackoff keeps transient retries in tests to a millisecond.
func fastBackoff() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }

// newTransport builds a Transport with test-friendly defaults, failing the
// test on error.
func newTransport(t *testing.T, keys []string, opts ...Option) *Transport {
	t.Helper()
	tr, err := New(keys, append([]Option{WithBackoff(fastBackoff)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close(); tr.CloseIdleConnections() })
	return tr
}

// get sends a GET through tr and returns the status and body.
func get(t *testing.T, tr http.RoundTripper, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// getConcurrently sends n GETs through tr at once and returns their
// statuses, 0 for a request that failed (and failed the test).
func getConcurrently(t *testing.T, tr http.RoundTripper, url string, n int) []int {
	t.Helper()
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := tr.RoundTrip(httptestRequest(t, url))
			if assert.NoError(t, err) {
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}
		}()
	}
	wg.Wait()
	return statuses
}

// stateOf returns the status of the key with the given label suffix.
func statusOf(t *testing.T, tr *Transport, key string) KeyStatus {
	t.Helper()
	for _, s := range tr.Keys() {
		if strings.HasSuffix(s.Label, key[len(key)-4:]) {
			return s
		}
	}
	t.Fatalf("no status for key ending %s", key[len(key)-4:])
	return KeyStatus{}
}

// trackedBody is a request body that counts its Close calls and can fail.
type trackedBody struct {
	r       io.Reader
	closes  atomic.Int32
	readErr error
}

func newTrackedBody(s string) *trackedBody { return &trackedBody{r: strings.NewReader(s)} }

func (b *trackedBody) Read(p []byte) (int, error) {
	if b.readErr != nil {
		return 0, b.readErr
	}
	return b.r.Read(p)
}

func (b *trackedBody) Close() error {
	b.closes.Add(1)
	return nil
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// answer is a base RoundTripper reply built without a network.
func answer(r *http.Request, status int, body string) *http.Response {
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: r,
		ContentLength: int64(len(body)),
	}
}

var errBoom = errors.New("boom")

// revokesKeyA is a provider's rule for tests that need one revoked key: keyA
// gets a 401 revocation, every other key a 200.
func revokesKeyA(key string, _ int) reply {
	if key == keyA {
		return reply{status: 401, body: bodyRevoked}
	}
	return reply{status: 200, body: "ok"}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
