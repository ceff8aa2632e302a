package integration_test

// The harness every SDK's tests share: a fake provider that records what it
// was sent and answers each key by a script, and a pool with short backoffs.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/credpool/credpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// placeholder is the API key every SDK is given: credpool replaces it, so the
// provider must never see it.
const placeholder = "credpool"

func TestMain(m *testing.M) {
	// The SDKs read credentials, base URLs and extra headers from the
	// environment; none of it may leak into these tests.
	for _, name := range []string{
		"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_ADMIN_KEY",
		"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_PROFILE",
		"ANTHROPIC_CUSTOM_HEADERS", "ANTHROPIC_FEDERATION_RULE_ID", "ANTHROPIC_ORGANIZATION_ID",
		"ANTHROPIC_IDENTITY_TOKEN", "ANTHROPIC_IDENTITY_TOKEN_FILE",
		"GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE",
		"GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_CLOUD_REGION", "GOOGLE_GEMINI_BASE_URL",
		"GOOGLE_VERTEX_BASE_URL",
		"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
	} {
		_ = os.Unsetenv(name)
	}
	goleak.VerifyTestMain(m,
		// Started by an init function of go.opencensus.io, which genai pulls in
		// through cloud.google.com/go: it lives as long as the process.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// wire is how a provider takes its key.
type wire struct {
	header string // the header that carries the key
	prefix string // written before the key: "Bearer " or ""
}

var (
	bearerWire    = wire{"Authorization", "Bearer "}
	anthropicWire = wire{"X-Api-Key", ""}
	geminiWire    = wire{"X-Goog-Api-Key", ""}
)

// hit is one request the fake provider received.
type hit struct {
	key    string // the key in the provider's header, prefix removed
	header http.Header
	query  url.Values
	path   string
}

// sdkAttempt is the SDK's own attempt number, for the Stainless SDKs
// (openai-go, anthropic-sdk-go) that send one; "" for the others.
func (h hit) sdkAttempt() string { return h.header.Get("X-Stainless-Retry-Count") }

// upstream is a fake provider. Each key answers by its script: the nth request
// carrying the key gets the nth step, and the last step repeats. A key with
// no script (the SDK's placeholder, say) gets unknown.
type upstream struct {
	t       *testing.T
	wire    wire
	srv     *httptest.Server
	unknown http.HandlerFunc

	mu      sync.Mutex
	hits    []hit
	scripts map[string][]http.HandlerFunc
	calls   map[string]int
}

func newUpstream(t *testing.T, w wire, unknown http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{
		t: t, wire: w, unknown: unknown,
		scripts: map[string][]http.HandlerFunc{},
		calls:   map[string]int{},
	}
	u.srv = httptest.NewServer(u)
	t.Cleanup(u.srv.Close)
	return u
}

// script sets how key answers, request by request.
func (u *upstream) script(key string, steps ...http.HandlerFunc) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.scripts[key] = steps
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.Header.Get(u.wire.header), u.wire.prefix)
	u.mu.Lock()
	u.hits = append(u.hits, hit{key: key, header: r.Header.Clone(), query: r.URL.Query(), path: r.URL.Path})
	steps := u.scripts[key]
	n := u.calls[key]
	u.calls[key]++
	u.mu.Unlock()
	if len(steps) == 0 {
		u.unknown(w, r)
		return
	}
	steps[min(n, len(steps)-1)](w, r)
}

func (u *upstream) url() string { return u.srv.URL }

func (u *upstream) recorded() []hit {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]hit(nil), u.hits...)
}

// keysSent lists the key of every request, in order.
func (u *upstream) keysSent() []string {
	var keys []string
	for _, h := range u.recorded() {
		keys = append(keys, h.key)
	}
	return keys
}

// sdkAttempts counts the requests per SDK attempt number.
func (u *upstream) sdkAttempts() map[string]int {
	n := map[string]int{}
	for _, h := range u.recorded() {
		n[h.sdkAttempt()]++
	}
	return n
}

// assertOnlyPoolKeys checks that every request carried one of keys in the
// provider's header, and that the SDK's placeholder reached the provider in
// no header and no query parameter.
func (u *upstream) assertOnlyPoolKeys(t *testing.T, keys []string) {
	t.Helper()
	hits := u.recorded()
	require.NotEmpty(t, hits, "the provider got no request")
	for i, h := range hits {
		assert.Contains(t, keys, h.key, "request %d: %s is not a pool key", i, u.wire.header)
		assert.Equal(t, u.wire.prefix+h.key, h.header.Get(u.wire.header), "request %d: scheme of %s", i, u.wire.header)
		for name, values := range h.header {
			for _, v := range values {
				assert.NotContains(t, v, placeholder, "request %d: header %s carries the SDK's placeholder", i, name)
			}
		}
		for name, values := range h.query {
			for _, v := range values {
				assert.NotContains(t, v, placeholder, "request %d: query %s carries the SDK's placeholder", i, name)
			}
		}
	}
}

// reply answers with status, a verbatim body and headers given as name, value
// pairs.
func reply(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// writeSSE streams events (each a complete "event:/data:" block without its
// blank line), flushing after each, as providers do.
func writeSSE(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flushEvents(w, events...)
}

// flushEvents writes events to a stream already under way, flushing each.
func flushEvents(w http.ResponseWriter, events ...string) {
	f, _ := w.(http.Flusher)
	for _, e := range events {
		_, _ = io.WriteString(w, e+"\n\n")
		if f != nil {
			f.Flush()
		}
	}
}

// heldStream sends the first event of a stream and holds the rest back until
// the client has that first event. A transport that buffered the response
// would never hand it over: the server gives up after 5 s, the stream ends
// early, and the test's check of the streamed text fails.
type heldStream struct {
	got  chan struct{}
	once sync.Once
}

func newHeldStream() *heldStream { return &heldStream{got: make(chan struct{})} }

// received is called by the client for every event it gets.
func (s *heldStream) received() { s.once.Do(func() { close(s.got) }) }

func (s *heldStream) serve(events ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeSSE(w, events[0])
		select {
		case <-s.got:
		case <-r.Context().Done():
			return
		case <-time.After(5 * time.Second):
			panic(http.ErrAbortHandler) // the first event never reached the client
		}
		flushEvents(w, events[1:]...)
	}
}

// wantsStream reports whether a JSON request body asks for a stream
// ("stream": true), as OpenAI's and Anthropic's do.
func wantsStream(r *http.Request) bool {
	var body struct {
		Stream bool `json:"stream"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	return body.Stream
}

// fastBackoff keeps credpool's transient retries to a millisecond, so that
// tests of 5xx storms take no time.
func fastBackoff() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }

// newPool is what a service would build, plus a short backoff. Its idle
// connections are closed when the test ends, so goleak sees none.
func newPool(t *testing.T, keys []string, opts ...credpool.Option) *credpool.Transport {
	t.Helper()
	pool, err := credpool.New(keys, append([]credpool.Option{credpool.WithBackoff(fastBackoff)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		pool.CloseIdleConnections()
		_ = pool.Close()
	})
	return pool
}

// requireKey checks one key's state and reason in Keys.
func requireKey(t *testing.T, pool *credpool.Transport, index int, state credpool.State, reason credpool.Reason) credpool.KeyStatus {
	t.Helper()
	st := pool.Keys()
	require.Greater(t, len(st), index)
	s := st[index]
	require.Equal(t, state, s.State, "key %d (%s)", index, s.Label)
	require.Equal(t, reason, s.Reason, "key %d (%s)", index, s.Label)
	return s
}

// assertResetIn checks that a cooling key returns about d from now.
func assertResetIn(t *testing.T, s credpool.KeyStatus, d time.Duration) {
	t.Helper()
	assert.WithinDuration(t, time.Now().Add(d), s.ResetAt, 5*time.Second, "ResetAt of %s", s.Label)
}

// repeat is n copies of s.
func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// keyFailure is one row of the per-SDK key-failure tables: how the first key
// fails, and where that leaves it; the call must succeed on the second key.
type keyFailure struct {
	name   string
	first  http.HandlerFunc
	state  credpool.State
	reason credpool.Reason
	reset  time.Duration // for a cooling key
}

// assertFailedOver checks where the row left the pool: the first key in the
// row's state, cooling about as long as the row says, and the second one OK.
func (k keyFailure) assertFailedOver(t *testing.T, pool *credpool.Transport) {
	t.Helper()
	s := requireKey(t, pool, 0, k.state, k.reason)
	if k.reset > 0 {
		assertResetIn(t, s, k.reset)
	}
	requireKey(t, pool, 1, credpool.StateOK, "")
}
