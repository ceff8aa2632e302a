package credpoolprom_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/credpool/credpool"
	"github.com/credpool/credpool/credpoolprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Test keys: long enough to be redacted, each with a tail that says how the
// fake provider treats it.
const (
	keyRevoked1 = "sk-test-secretsecretsecretsecret-REV1"
	keyGood1    = "sk-test-secretsecretsecretsecret-OK01"
	keyLimited  = "sk-test-secretsecretsecretsecret-RATE"
	keyRevoked2 = "sk-test-secretsecretsecretsecret-REV2"
	keyGood2    = "sk-test-secretsecretsecretsecret-OK02"
)

var testKeys = []string{keyRevoked1, keyGood1, keyLimited, keyRevoked2, keyGood2}

// fakeProvider answers by the key's tail: REV* are revoked (401
// token_revoked), RATE is rate limited for a minute (429, Retry-After: 60),
// every other key gets a 200, and OK01 also reports 42 requests left. The
// path /flaky answers 500 to its first request, and the path /slow waits
// until the request ends or the server closes.
func fakeProvider(t testing.TB) *httptest.Server {
	var flaky atomic.Bool
	slow := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case strings.HasSuffix(key, "REV1"), strings.HasSuffix(key, "REV2"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"message":"revoked","code":"token_revoked"}}`)
			return
		case strings.HasSuffix(key, "RATE"):
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"message":"slow down","type":"rate_limit_exceeded"}}`)
			return
		case strings.HasSuffix(key, "OK01"):
			w.Header().Set("X-Ratelimit-Remaining-Requests", "42")
		}
		switch r.URL.Path {
		case "/flaky":
			if flaky.CompareAndSwap(false, true) {
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, `{"error":{"message":"oops","type":"server_error"}}`)
				return
			}
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-slow:
			}
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(func() { close(slow); srv.Close() })
	return srv
}

// fastBackoff keeps transient retries to a millisecond.
func fastBackoff() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }

// newPool builds Metrics with opts and a Transport over testKeys that sends
// its attempts through m.Base, on a transport of its own that the test closes.
func newPool(t testing.TB, opts ...credpoolprom.Option) (*credpoolprom.Metrics, *credpool.Transport) {
	t.Helper()
	m := credpoolprom.New(opts...)
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	tr, err := credpool.New(testKeys, credpool.WithBase(m.Base(base)), credpool.WithBackoff(fastBackoff))
	require.NoError(t, err)
	m.Observe(tr)
	return m, tr
}

// get sends a GET through tr and returns the status, having read the body.
func get(t testing.TB, tr http.RoundTripper, url string) int {
	t.Helper()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode
}

// scraper serves a registry over HTTP with promhttp, as Prometheus would
// scrape it.
type scraper struct {
	srv    *httptest.Server
	client *http.Client
}

func newScraper(t testing.TB, reg *prometheus.Registry) *scraper {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	tr := &http.Transport{}
	t.Cleanup(func() { tr.CloseIdleConnections(); srv.Close() })
	return &scraper{srv: srv, client: &http.Client{Transport: tr}}
}

// scrape fetches the text exposition and parses it with the Prometheus text
// parser. It returns the text too, to search it.
func (s *scraper) scrape(t testing.TB) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.srv.URL+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "scrape: %s", body)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err, "scrape:\n%s", body)
	return string(body), families
}

// series returns the value of the metric of family name whose labels
// include want, failing unless exactly one matches.
func series(t testing.TB, families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := families[name]
	require.True(t, ok, "no family %s", name)
	var found []float64
	for _, m := range f.GetMetric() {
		if hasLabels(m, want) {
			found = append(found, value(f.GetType(), m))
		}
	}
	require.Len(t, found, 1, "%s%v", name, want)
	return found[0]
}

// hasLabels reports whether m carries every label of want.
func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func value(typ dto.MetricType, m *dto.Metric) float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}

// histogramCount sums the sample counts of a histogram family's series,
// and returns them by code too.
func histogramCount(t testing.TB, families map[string]*dto.MetricFamily, name string) (uint64, map[string]uint64) {
	t.Helper()
	f, ok := families[name]
	require.True(t, ok, "no family %s", name)
	require.Equal(t, dto.MetricType_HISTOGRAM, f.GetType())
	var total uint64
	byCode := map[string]uint64{}
	for _, m := range f.GetMetric() {
		n := m.GetHistogram().GetSampleCount()
		total += n
		for _, l := range m.GetLabel() {
			if l.GetName() == "code" {
				byCode[l.GetValue()] += n
			}
		}
	}
	return total, byCode
}

// gather registers c alone in a fresh registry and returns what it collects.
func gather(t *testing.T, c prometheus.Collector) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	return mfs
}
