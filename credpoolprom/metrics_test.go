package credpoolprom_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/credpoolprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// drive sends 10 requests, one at a time, then one to /flaky. Round robin
// meets each bad key once: REV1, RATE and REV2 cost one failed attempt and
// one rotation each, and /flaky one 500 and one retry, so the 11 requests make
// 11 + 3 + 1 = 15 attempts.
func drive(t *testing.T, srv string, tr http.RoundTripper) {
	t.Helper()
	for i := 0; i < 10; i++ {
		require.Equal(t, http.StatusOK, get(t, tr, srv+"/v1/models"))
	}
	require.Equal(t, http.StatusOK, get(t, tr, srv+"/flaky"))
}

func TestScrape(t *testing.T) {
	api := fakeProvider(t)
	m, tr := newPool(t, credpoolprom.WithPerKey(true), credpoolprom.WithConstLabels(prometheus.Labels{"pool": "openai"}))
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(m))
	s := newScraper(t, reg)

	drive(t, api.URL, tr)
	text, fams := s.scrape(t)

	pool := map[string]string{"pool": "openai"}
	with := func(k, v string) map[string]string { return map[string]string{"pool": "openai", k: v} }

	// Keys by state, every state present, disabled at 0.
	assert.Equal(t, 2.0, series(t, fams, "credpool_keys", with("state", "ok")))
	assert.Equal(t, 1.0, series(t, fams, "credpool_keys", with("state", "exhausted")))
	assert.Equal(t, 2.0, series(t, fams, "credpool_keys", with("state", "dead")))
	assert.Equal(t, 0.0, series(t, fams, "credpool_keys", with("state", "disabled")))
	assert.Len(t, fams["credpool_keys"].GetMetric(), 4)

	// Counters.
	assert.Equal(t, 15.0, series(t, fams, "credpool_attempts_total", pool))
	assert.Equal(t, 3.0, series(t, fams, "credpool_rotations_total", pool))
	assert.Equal(t, 1.0, series(t, fams, "credpool_retries_total", pool))
	assert.Equal(t, 0.0, series(t, fams, "credpool_waits_total", pool))
	assert.Equal(t, 0.0, series(t, fams, "credpool_rechecks_total", pool), "exported at 0 without WithRecheck")
	assert.Equal(t, 0.0, series(t, fams, "credpool_revived_total", pool))
	waited := series(t, fams, "credpool_wait_seconds_total", pool)
	assert.Greater(t, waited, 0.0, "the backoff before the retry")
	assert.Less(t, waited, 5.0)

	// Failures by reason: every reason, 0 included.
	wantFailures := map[credpool.Reason]float64{
		credpool.ReasonAuthPermanent: 2, credpool.ReasonRateLimit: 1, credpool.ReasonServerError: 1,
		credpool.ReasonAuth: 0, credpool.ReasonBilling: 0, credpool.ReasonOverloaded: 0,
		credpool.ReasonTransport: 0, credpool.ReasonClientError: 0,
	}
	for r, want := range wantFailures {
		assert.Equal(t, want, series(t, fams, "credpool_attempt_failures_total", with("reason", string(r))), r)
	}
	assert.Len(t, fams["credpool_attempt_failures_total"].GetMetric(), len(wantFailures))

	// The histogram saw every attempt, by status class.
	total, byCode := histogramCount(t, fams, "credpool_upstream_latency_seconds")
	assert.Equal(t, uint64(15), total)
	assert.Equal(t, map[string]uint64{"2xx": 11, "4xx": 3, "5xx": 1, "error": 0}, byCode)
	stats := tr.Stats()
	assert.Equal(t, stats.Attempts, total, "histogram count equals Stats.Attempts")

	// Per-key series, by redacted label.
	status := tr.Keys()
	require.Len(t, status, len(testKeys))
	for i, st := range status {
		key := testKeys[i]
		require.NotContains(t, key, st.Label, "a label is not the key")
		assert.True(t, strings.HasSuffix(st.Label, key[len(key)-4:]), st.Label)
		for _, state := range []credpool.State{credpool.StateOK, credpool.StateExhausted, credpool.StateDead, credpool.StateDisabled} {
			want := 0.0
			if state == st.State {
				want = 1
			}
			got := series(t, fams, "credpool_key_state", map[string]string{"pool": "openai", "key": st.Label, "state": string(state)})
			assert.Equal(t, want, got, "%s %s", st.Label, state)
		}
		assert.Equal(t, float64(st.Requests), series(t, fams, "credpool_key_requests_total", with("key", st.Label)), st.Label)
		assert.Equal(t, float64(st.Failures), series(t, fams, "credpool_key_failures_total", with("key", st.Label)), st.Label)
		assert.Equal(t, float64(st.Strikes), series(t, fams, "credpool_key_strikes", with("key", st.Label)), st.Label)
	}
	wantStates := map[string]credpool.State{
		keyRevoked1: credpool.StateDead, keyRevoked2: credpool.StateDead,
		keyLimited: credpool.StateExhausted, keyGood1: credpool.StateOK, keyGood2: credpool.StateOK,
	}
	for i, key := range testKeys {
		assert.Equal(t, wantStates[key], status[i].State, status[i].Label)
	}
	assert.Equal(t, 1.0, series(t, fams, "credpool_key_requests_total", with("key", status[0].Label)), "REV1 was tried once")

	// Remaining only for the key whose provider reported it.
	require.Len(t, fams["credpool_key_remaining"].GetMetric(), 1)
	assert.Equal(t, 42.0, series(t, fams, "credpool_key_remaining", with("key", status[1].Label)))

	// The constant label is on every series.
	for name, f := range fams {
		for _, metric := range f.GetMetric() {
			assert.True(t, hasLabels(metric, pool), "%s lacks pool label", name)
		}
	}

	// No key, nor its secret part, appears anywhere in the scrape.
	for _, key := range testKeys {
		assert.NotContains(t, text, key)
		assert.NotContains(t, text, key[len("sk-test-"):len(key)-4])
	}
	assert.NotContains(t, text, "secret")
}

func TestScrapeDefaults(t *testing.T) {
	api := fakeProvider(t)
	m, tr := newPool(t)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(m))
	drive(t, api.URL, tr)

	_, fams := newScraper(t, reg).scrape(t)
	names := make([]string, 0, len(fams))
	for name := range fams {
		names = append(names, name)
	}
	assert.ElementsMatch(t, []string{
		"credpool_keys", "credpool_attempts_total", "credpool_attempt_failures_total",
		"credpool_rotations_total", "credpool_retries_total", "credpool_waits_total",
		"credpool_wait_seconds_total", "credpool_rechecks_total", "credpool_revived_total",
		"credpool_upstream_latency_seconds",
	}, names, "no per-key series by default")
	assert.Equal(t, 15.0, series(t, fams, "credpool_attempts_total", nil))
	assert.Equal(t, 2.0, series(t, fams, "credpool_keys", map[string]string{"state": "dead"}))
}

func TestNamespace(t *testing.T) {
	api := fakeProvider(t)
	m, tr := newPool(t, credpoolprom.WithNamespace("llm"), credpoolprom.WithPerKey(true))
	require.Equal(t, http.StatusOK, get(t, tr, api.URL+"/v1/models"))
	fams := gather(t, m)
	require.NotEmpty(t, fams)
	for _, f := range fams {
		assert.True(t, strings.HasPrefix(f.GetName(), "llm_"), f.GetName())
	}
	assert.Equal(t, 2, testutil.CollectAndCount(m, "llm_attempts_total", "llm_rotations_total"))
}

func TestLint(t *testing.T) {
	api := fakeProvider(t)
	for _, perKey := range []bool{false, true} {
		t.Run(fmt.Sprint("perKey=", perKey), func(t *testing.T) {
			m, tr := newPool(t, credpoolprom.WithPerKey(perKey), credpoolprom.WithConstLabels(prometheus.Labels{"pool": "openai"}))
			drive(t, api.URL, tr)
			problems, err := testutil.CollectAndLint(m)
			require.NoError(t, err)
			assert.Empty(t, problems)
		})
	}
	t.Run("unobserved", func(t *testing.T) {
		problems, err := testutil.CollectAndLint(credpoolprom.New(credpoolprom.WithPerKey(true)))
		require.NoError(t, err)
		assert.Empty(t, problems)
	})
}

// Registration goes through the registry's checks, Describe against Collect
// included (pedantic), and two pools with different const labels coexist.
func TestRegister(t *testing.T) {
	api := fakeProvider(t)
	reg := prometheus.NewPedanticRegistry()
	a, ta := newPool(t, credpoolprom.WithPerKey(true), credpoolprom.WithConstLabels(prometheus.Labels{"pool": "a"}))
	b, tb := newPool(t, credpoolprom.WithPerKey(true), credpoolprom.WithConstLabels(prometheus.Labels{"pool": "b"}))
	require.NoError(t, reg.Register(a))
	require.NoError(t, reg.Register(b))
	drive(t, api.URL, ta)
	require.Equal(t, http.StatusOK, get(t, tb, api.URL+"/v1/models"))

	_, fams := newScraper(t, reg).scrape(t)
	assert.Equal(t, 15.0, series(t, fams, "credpool_attempts_total", map[string]string{"pool": "a"}))
	assert.Equal(t, float64(tb.Stats().Attempts), series(t, fams, "credpool_attempts_total", map[string]string{"pool": "b"}))
	assert.Equal(t, 1.0, series(t, fams, "credpool_keys", map[string]string{"pool": "b", "state": "dead"}))

	// The same pool twice is refused, as any duplicate collector is.
	dup, _ := newPool(t, credpoolprom.WithPerKey(true), credpoolprom.WithConstLabels(prometheus.Labels{"pool": "a"}))
	var already prometheus.AlreadyRegisteredError
	assert.ErrorAs(t, reg.Register(dup), &already)
	assert.Error(t, reg.Register(credpoolprom.New(credpoolprom.WithConstLabels(prometheus.Labels{"pool": "a"}))))

	// A const label that clashes with a metric's own label is refused.
	assert.Error(t, prometheus.NewRegistry().Register(credpoolprom.New(credpoolprom.WithConstLabels(prometheus.Labels{"state": "x"}))))
}

// Before Observe, Collect sends only the histogram and never panics.
func TestBeforeObserve(t *testing.T) {
	m := credpoolprom.New(credpoolprom.WithPerKey(true))
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(m))
	_, fams := newScraper(t, reg).scrape(t)
	require.Len(t, fams, 1)
	total, _ := histogramCount(t, fams, "credpool_upstream_latency_seconds")
	assert.Zero(t, total)

	// Observe(nil) goes back to that.
	_, tr := newPool(t)
	m.Observe(tr)
	_, fams = newScraper(t, reg).scrape(t)
	assert.Greater(t, len(fams), 1)
	m.Observe(nil)
	_, fams = newScraper(t, reg).scrape(t)
	assert.Len(t, fams, 1)
}

// Scrapes run while requests do, under -race: every scrape parses, the
// counters never go down, and at the end the histogram has seen every
// attempt.
func TestConcurrentScrape(t *testing.T) {
	api := fakeProvider(t)
	m, tr := newPool(t, credpoolprom.WithPerKey(true))
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(m))
	s := newScraper(t, reg)

	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	var done atomic.Bool
	errs := make(chan error, workers)
	client := &http.Client{Transport: tr}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				resp, err := client.Get(api.URL + "/v1/chat/completions")
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); done.Store(true) }()

	var last float64
	scrapes := 0
	for !done.Load() || scrapes < 3 {
		_, fams := s.scrape(t)
		attempts := series(t, fams, "credpool_attempts_total", nil)
		require.GreaterOrEqual(t, attempts, last, "attempts went down")
		last = attempts
		problems, err := testutil.CollectAndLint(m)
		require.NoError(t, err)
		require.Empty(t, problems)
		scrapes++
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	_, fams := s.scrape(t)
	attempts := series(t, fams, "credpool_attempts_total", nil)
	assert.GreaterOrEqual(t, attempts, float64(workers*perWorker))
	total, _ := histogramCount(t, fams, "credpool_upstream_latency_seconds")
	assert.Equal(t, attempts, float64(total))
	assert.Equal(t, 2.0, series(t, fams, "credpool_keys", map[string]string{"state": "dead"}))
}

// roundTripFunc is a base transport made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// closer is a base transport that records CloseIdleConnections.
type closer struct {
	roundTripFunc
	closed atomic.Int32
}

func (c *closer) CloseIdleConnections() { c.closed.Add(1) }

// codes returns the histogram's sample count by code label.
func codes(t *testing.T, m *credpoolprom.Metrics) map[string]uint64 {
	t.Helper()
	mfs := gather(t, m)
	out := map[string]uint64{}
	for _, f := range mfs {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "code" {
					out[l.GetValue()] = metric.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return out
}

func TestBase(t *testing.T) {
	t.Run("passes through untouched", func(t *testing.T) {
		m := credpoolprom.New()
		body := &trackedBody{Reader: strings.NewReader("response")}
		want := &http.Response{StatusCode: http.StatusCreated, Header: http.Header{"X-A": {"1"}}, Body: body}
		var got *http.Request
		rt := m.Base(roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = r
			time.Sleep(10 * time.Millisecond)
			return want, nil
		}))
		reqBody := &trackedBody{Reader: strings.NewReader("request")}
		req := httptest.NewRequest(http.MethodPost, "http://example.com/x", reqBody)
		req.Header.Set("Authorization", "Bearer "+keyGood1)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		assert.Same(t, want, resp, "the response is the base's own")
		assert.Same(t, req, got, "the request is the caller's own")
		assert.Zero(t, body.reads.Load(), "the response body is not read")
		assert.Zero(t, reqBody.reads.Load(), "the request body is not read")
		assert.Equal(t, map[string]uint64{"2xx": 1, "4xx": 0, "5xx": 0, "error": 0}, codes(t, m))

		mfs := gather(t, m)
		sum := 0.0
		for _, f := range mfs {
			for _, metric := range f.GetMetric() {
				sum += metric.GetHistogram().GetSampleSum()
			}
		}
		assert.GreaterOrEqual(t, sum, 0.01, "time to headers is observed")
	})

	t.Run("status classes and errors", func(t *testing.T) {
		m := credpoolprom.New()
		wantErr := errors.New("dial: refused")
		for _, c := range []struct {
			status int
			err    error
		}{{101, nil}, {200, nil}, {204, nil}, {304, nil}, {404, nil}, {429, nil}, {500, nil}, {529, nil}, {0, wantErr}, {999, nil}} {
			rt := m.Base(roundTripFunc(func(*http.Request) (*http.Response, error) {
				if c.err != nil {
					return nil, c.err
				}
				return &http.Response{StatusCode: c.status, Body: http.NoBody}, nil
			}))
			resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://example.com/", nil))
			if c.err != nil {
				assert.Same(t, c.err, err, "the error is the base's own")
				assert.Nil(t, resp)
			} else {
				require.NoError(t, err)
				assert.Equal(t, c.status, resp.StatusCode)
			}
		}
		assert.Equal(t, map[string]uint64{"1xx": 1, "2xx": 2, "3xx": 1, "4xx": 2, "5xx": 2, "error": 2}, codes(t, m))
	})

	t.Run("panic is observed and goes on", func(t *testing.T) {
		m := credpoolprom.New()
		rt := m.Base(roundTripFunc(func(*http.Request) (*http.Response, error) { panic("boom") }))
		assert.PanicsWithValue(t, "boom", func() {
			rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://example.com/", nil))
		})
		assert.Equal(t, uint64(1), codes(t, m)["error"])
	})

	t.Run("CloseIdleConnections", func(t *testing.T) {
		base := &closer{}
		rt := credpoolprom.New().Base(base)
		c, ok := rt.(interface{ CloseIdleConnections() })
		require.True(t, ok)
		c.CloseIdleConnections()
		assert.Equal(t, int32(1), base.closed.Load())

		// A base without the method is fine too.
		credpoolprom.New().Base(roundTripFunc(nil)).(interface{ CloseIdleConnections() }).CloseIdleConnections()

		// And so is the nil base, which is http.DefaultTransport.
		credpoolprom.New().Base(nil).(interface{ CloseIdleConnections() }).CloseIdleConnections()
	})

	t.Run("nil base is http.DefaultTransport", func(t *testing.T) {
		api := fakeProvider(t)
		m := credpoolprom.New()
		rt := m.Base(nil)
		assert.Equal(t, http.StatusOK, get(t, rt, api.URL+"/v1/models"))
		assert.Equal(t, uint64(1), codes(t, m)["2xx"])
	})

	t.Run("cancelled request is an error", func(t *testing.T) {
		api := fakeProvider(t)
		m, tr := newPool(t)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.URL+"/slow", nil)
		require.NoError(t, err)
		_, err = tr.RoundTrip(req)
		require.Error(t, err)
		got := codes(t, m)
		assert.Equal(t, uint64(1), got["error"])
		assert.Equal(t, tr.Stats().Attempts, got["error"]+got["2xx"]+got["4xx"]+got["5xx"])
	})
}

// trackedBody counts reads and closes of a body.
type trackedBody struct {
	io.Reader
	reads  atomic.Int32
	closes atomic.Int32
}

func (b *trackedBody) Read(p []byte) (int, error) { b.reads.Add(1); return b.Reader.Read(p) }
func (b *trackedBody) Close() error               { b.closes.Add(1); return nil }

func TestNilOption(t *testing.T) {
	assert.NotPanics(t, func() { credpoolprom.New(nil, credpoolprom.WithPerKey(true)) })
}

// WithConstLabels copies the map: changing it afterwards changes nothing.
func TestConstLabelsCopied(t *testing.T) {
	l := prometheus.Labels{"pool": "a"}
	m := credpoolprom.New(credpoolprom.WithConstLabels(l))
	l["pool"] = "b"
	mfs := gather(t, m)
	require.NotEmpty(t, mfs)
	for _, f := range mfs {
		for _, metric := range f.GetMetric() {
			assert.True(t, hasLabels(metric, map[string]string{"pool": "a"}))
		}
	}
}

// "le" is Prometheus's bucket label: New refuses it at once, as
// prometheus.NewHistogram does, rather than on the first attempt.
func TestConstLabelLe(t *testing.T) {
	assert.Panics(t, func() { credpoolprom.New(credpoolprom.WithConstLabels(prometheus.Labels{"le": "1"})) })
}

// Timing an attempt allocates nothing, for the usual classes.
func TestBaseAllocs(t *testing.T) {
	m := credpoolprom.New()
	resp := &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}
	rt := m.Base(roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil }))
	req := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	allocs := testing.AllocsPerRun(100, func() { rt.RoundTrip(req) })
	assert.Zero(t, allocs)
}

func BenchmarkBase(b *testing.B) {
	m := credpoolprom.New()
	resp := &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}
	rt := m.Base(roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil }))
	req := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rt.RoundTrip(req)
		}
	})
}

func BenchmarkCollect(b *testing.B) {
	m, _ := newPool(b, credpoolprom.WithPerKey(true))
	reg := prometheus.NewRegistry()
	require.NoError(b, reg.Register(m))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStoreHealth: with a store, its health is exported: up, loaded, and the
// age of the last sync.
func TestStoreHealth(t *testing.T) {
	m := credpoolprom.New()
	store, err := credpool.NewFileStore(filepath.Join(t.TempDir(), "state.json"))
	require.NoError(t, err)
	tr, err := credpool.New(testKeys, credpool.WithStore(store))
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	m.Observe(tr)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(m))
	_, fams := newScraper(t, reg).scrape(t)
	assert.Equal(t, 1.0, series(t, fams, "credpool_store_up", nil))
	assert.Equal(t, 1.0, series(t, fams, "credpool_store_loaded", nil))
	age := series(t, fams, "credpool_store_last_sync_age_seconds", nil)
	assert.True(t, age >= 0 && age < 60, "age %v", age)
}

// TestScrapeDisabled: a key an operator disabled is counted as disabled, in
// the pool's gauge and in its own, until it is enabled.
func TestScrapeDisabled(t *testing.T) {
	api := fakeProvider(t)
	m, tr := newPool(t, credpoolprom.WithPerKey(true))
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(m))
	s := newScraper(t, reg)
	require.Equal(t, http.StatusOK, get(t, tr, api.URL+"/v1/models"))

	require.NoError(t, tr.DisableKey(1))
	text, fams := s.scrape(t)
	label := tr.Keys()[1].Label
	assert.Equal(t, 1.0, series(t, fams, "credpool_keys", map[string]string{"state": "disabled"}))
	for _, state := range []credpool.State{credpool.StateOK, credpool.StateExhausted, credpool.StateDead, credpool.StateDisabled} {
		want := 0.0
		if state == credpool.StateDisabled {
			want = 1
		}
		got := series(t, fams, "credpool_key_state", map[string]string{"key": label, "state": string(state)})
		assert.Equal(t, want, got, state)
	}
	assert.NotContains(t, text, keyGood1)
	problems, err := testutil.CollectAndLint(m)
	require.NoError(t, err)
	assert.Empty(t, problems)

	require.NoError(t, tr.EnableKey(1))
	_, fams = s.scrape(t)
	assert.Equal(t, 0.0, series(t, fams, "credpool_keys", map[string]string{"state": "disabled"}))
	assert.Equal(t, 1.0, series(t, fams, "credpool_key_state", map[string]string{"key": label, "state": "ok"}))
}

// TestScrapeRechecks: the re-checks of WithRecheck, and the keys they
// revive, are counted. It runs in a synctest bubble, with an upstream made
// of a function, so that an hour between re-checks passes at once; the
// bubble's clock moves only when every goroutine in it waits.
func TestScrapeRechecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var reinstated atomic.Bool
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			status, body := http.StatusOK, `{"ok":true}`
			if strings.HasSuffix(r.Header.Get("Authorization"), "REV1") && !reinstated.Load() {
				status, body = http.StatusUnauthorized, `{"error":{"message":"revoked","code":"token_revoked"}}`
			}
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
		})
		m := credpoolprom.New()
		tr, err := credpool.New([]string{keyRevoked1, keyGood1}, credpool.WithBase(m.Base(base)),
			credpool.WithStrategy(credpool.FillFirst),
			credpool.WithRecheck(time.Hour, http.MethodGet, "https://provider.test/v1/models"))
		require.NoError(t, err)
		defer tr.Close()
		m.Observe(tr)
		scrape := func() map[string]*dto.MetricFamily {
			out := map[string]*dto.MetricFamily{}
			for _, f := range gather(t, m) {
				out[f.GetName()] = f
			}
			return out
		}
		require.Equal(t, http.StatusOK, get(t, tr, "https://provider.test/v1/chat/completions"))
		fams := scrape()
		assert.Equal(t, 1.0, series(t, fams, "credpool_keys", map[string]string{"state": "dead"}))
		assert.Equal(t, 0.0, series(t, fams, "credpool_rechecks_total", nil))

		time.Sleep(time.Hour) // the bubble's clock: no real waiting
		synctest.Wait()
		fams = scrape()
		assert.Equal(t, 1.0, series(t, fams, "credpool_rechecks_total", nil), "one re-check of the dead key")
		assert.Equal(t, 0.0, series(t, fams, "credpool_revived_total", nil), "refused: still dead")
		assert.Equal(t, 1.0, series(t, fams, "credpool_keys", map[string]string{"state": "dead"}))

		reinstated.Store(true)
		time.Sleep(time.Hour)
		synctest.Wait()
		fams = scrape()
		assert.Equal(t, 2.0, series(t, fams, "credpool_rechecks_total", nil))
		assert.Equal(t, 1.0, series(t, fams, "credpool_revived_total", nil))
		assert.Equal(t, 0.0, series(t, fams, "credpool_keys", map[string]string{"state": "dead"}))
		assert.Equal(t, 2.0, series(t, fams, "credpool_keys", map[string]string{"state": "ok"}))

		// A re-check goes through Base like an attempt, so the histogram
		// times it too, though it is no attempt of a request.
		total, _ := histogramCount(t, fams, "credpool_upstream_latency_seconds")
		assert.Equal(t, series(t, fams, "credpool_attempts_total", nil)+2, float64(total))
	})
}
