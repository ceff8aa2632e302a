package credpoolprom

import (
	"maps"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/credpool/credpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports one credpool.Transport's state as Prometheus metrics. It
// implements prometheus.Collector. Create it with New, hand Base to
// credpool.WithBase, call Observe with the Transport, and register it. It is
// safe for concurrent use.
type Metrics struct {
	perKey    bool
	transport atomic.Pointer[credpool.Transport]
	latency   *prometheus.HistogramVec
	observers [len(classes)]prometheus.Observer // of latency, for the usual classes; nil for the rare

	keys, attempts, failures                 *prometheus.Desc
	rotations, retries, waits, waitedSeconds *prometheus.Desc
	rechecks, revived                        *prometheus.Desc
	keyState, keyRequests, keyFailures       *prometheus.Desc
	keyRemaining                             *prometheus.Desc
	keyStrikes                               *prometheus.Desc
	storeUp, storeLoaded, storeSyncAge       *prometheus.Desc
}

// Option configures Metrics. Options are applied in order by New.
type Option func(*options)

type options struct {
	namespace   string
	constLabels prometheus.Labels
	perKey      bool
}

// WithNamespace sets the prefix of every metric name. The default is
// "credpool"; "" leaves the names unprefixed ("keys", "attempts_total"...).
// Use letters, digits and underscores, as in "llm" or "openai_pool", so the
// names stay valid for every Prometheus version.
func WithNamespace(ns string) Option {
	return func(o *options) { o.namespace = ns }
}

// WithConstLabels adds labels with fixed values to every metric, such as
// {"pool": "openai"}, to tell apart the pools of one process. The map is
// copied. A label named like one of the metrics' own labels (state, reason,
// code, key) makes registration fail, and New panics on a label named "le",
// which Prometheus reserves for histogram buckets, as prometheus.NewHistogram
// does.
func WithConstLabels(l prometheus.Labels) Option {
	return func(o *options) { o.constLabels = maps.Clone(l) }
}

// WithPerKey turns on the per-key series, labelled by each key's redacted
// label: credpool_key_state, credpool_key_requests_total,
// credpool_key_failures_total, credpool_key_remaining and credpool_key_strikes. It is off by
// default because it adds several series per key, which is too many for a
// large pool.
func WithPerKey(on bool) Option {
	return func(o *options) { o.perKey = on }
}

// latencyBuckets suit LLM APIs: from a cached or tiny answer in tens of
// milliseconds to a long completion that sends its headers after minutes.
var latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120}

// states and reasons are always exported, at 0 when nothing happened, so that
// rates and alerts work from the first scrape.
var (
	states  = []credpool.State{credpool.StateOK, credpool.StateExhausted, credpool.StateDead, credpool.StateDisabled}
	reasons = []credpool.Reason{
		credpool.ReasonAuthPermanent, credpool.ReasonAuth, credpool.ReasonBilling, credpool.ReasonRateLimit,
		credpool.ReasonOverloaded, credpool.ReasonServerError, credpool.ReasonTransport, credpool.ReasonClientError,
	}
)

// New returns Metrics configured by opts. It observes no Transport until
// Observe is called: until then it exports only the latency histogram. It
// panics on a const label named "le" (see WithConstLabels); every other
// mistake in the options is reported when the Metrics are registered.
func New(opts ...Option) *Metrics {
	o := options{namespace: "credpool"}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(o.namespace, "", name), help, labels, o.constLabels)
	}
	m := &Metrics{
		perKey: o.perKey,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace:   o.namespace,
			Name:        "upstream_latency_seconds",
			Help:        "Time from sending an attempt upstream to its response headers, by status class (1xx..5xx, or error when no response came).",
			ConstLabels: o.constLabels,
			Buckets:     latencyBuckets,
		}, []string{"code"}),

		keys:          desc("keys", "Keys in the pool, by state: ok (in rotation), exhausted (cooling), dead (out until reset or a re-check's success), disabled (out until enabled).", "state"),
		attempts:      desc("attempts_total", "Attempts sent upstream, over all keys."),
		failures:      desc("attempt_failures_total", "Attempts that failed, by reason.", "reason"),
		rotations:     desc("rotations_total", "Times a request moved at once to another key."),
		retries:       desc("retries_total", "Retries after a backoff."),
		rechecks:      desc("rechecks_total", "Re-checks of dead keys sent (credpool.WithRecheck)."),
		revived:       desc("revived_total", "Dead keys a re-check put back in rotation."),
		waits:         desc("waits_total", "Waits for a cooling key to return."),
		waitedSeconds: desc("wait_seconds_total", "Time spent in backoffs and in waits for a cooling key."),
		storeUp:       desc("store_up", "1 while the shared store's last answer was a success, 0 after a failure. Absent without a store."),
		storeLoaded:   desc("store_loaded", "1 once the stored key states have been loaded, 0 before. Absent without a store."),
		storeSyncAge:  desc("store_last_sync_age_seconds", "Seconds since the shared store last answered (a load, a save, a watched change); the Transport loads every 30 s. Absent before the first answer."),
	}
	if m.perKey {
		m.keyState = desc("key_state", "1 for the key's current state, 0 for the others.", "key", "state")
		m.keyRequests = desc("key_requests_total", "Attempts sent with the key.", "key")
		m.keyFailures = desc("key_failures_total", "Attempts with the key that failed.", "key")
		m.keyRemaining = desc("key_remaining", "The provider's last count of requests left in the key's current window.", "key")
		m.keyStrikes = desc("key_strikes", "Cooldowns in a row after which the key failed again at once; each doubles the next.", "key")
	}
	// The usual classes exist from the start, at 0, and are looked up once.
	for _, c := range []int{class2xx, class4xx, class5xx, classError} {
		m.observers[c] = m.latency.WithLabelValues(classes[c])
	}
	return m
}

// Observe sets the Transport whose Keys and Stats are read at scrape time.
// Call it once, after credpool.New. A later call switches to another
// Transport, whose counts Prometheus then sees as a counter reset; nil stops
// observing, leaving only the histogram.
func (m *Metrics) Observe(t *credpool.Transport) { m.transport.Store(t) }

// collectStore sends the health of t's store, if it has one.
func (m *Metrics) collectStore(ch chan<- prometheus.Metric, t *credpool.Transport) {
	h, ok := t.StoreHealth()
	if !ok {
		return
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(m.storeUp, boolFloat(h.Up))
	gauge(m.storeLoaded, boolFloat(h.Loaded))
	if !h.LastSync.IsZero() {
		gauge(m.storeSyncAge, time.Since(h.LastSync).Seconds())
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Describe sends the descriptors of every metric the Metrics can export. It
// implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.latency.Describe(ch)
	for _, d := range m.descs() {
		ch <- d
	}
}

func (m *Metrics) descs() []*prometheus.Desc {
	d := []*prometheus.Desc{m.keys, m.attempts, m.failures, m.rotations, m.retries, m.waits, m.waitedSeconds, m.rechecks, m.revived,
		m.storeUp, m.storeLoaded, m.storeSyncAge}
	if m.perKey {
		d = append(d, m.keyState, m.keyRequests, m.keyFailures, m.keyRemaining, m.keyStrikes)
	}
	return d
}

// Collect reads the observed Transport's Keys and Stats and sends their
// metrics, with the latency histogram. Before Observe it sends only the
// histogram. It implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.latency.Collect(ch)
	t := m.transport.Load()
	if t == nil {
		return
	}
	status, stats := t.Keys(), t.Stats()

	byState := make(map[credpool.State]int, len(states))
	for _, s := range status {
		byState[s.State]++
	}
	for _, s := range withExtra(states, byState) {
		ch <- prometheus.MustNewConstMetric(m.keys, prometheus.GaugeValue, float64(byState[s]), string(s))
	}

	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	counter(m.attempts, float64(stats.Attempts))
	for _, r := range withExtra(reasons, stats.Failures) {
		counter(m.failures, float64(stats.Failures[r]), string(r))
	}
	counter(m.rotations, float64(stats.Rotations))
	counter(m.retries, float64(stats.Retries))
	counter(m.waits, float64(stats.Waits))
	counter(m.waitedSeconds, stats.Waited.Seconds())
	counter(m.rechecks, float64(stats.Rechecks))
	counter(m.revived, float64(stats.Revived))
	m.collectStore(ch, t)

	if !m.perKey {
		return
	}
	for _, s := range status {
		key := s.Label // unique in a pool: one series per key
		for _, st := range withExtra(states, map[credpool.State]int{s.State: 1}) {
			v := 0.0
			if st == s.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(m.keyState, prometheus.GaugeValue, v, key, string(st))
		}
		counter(m.keyRequests, float64(s.Requests), key)
		counter(m.keyFailures, float64(s.Failures), key)
		ch <- prometheus.MustNewConstMetric(m.keyStrikes, prometheus.GaugeValue, float64(s.Strikes), key)
		if s.Remaining >= 0 {
			ch <- prometheus.MustNewConstMetric(m.keyRemaining, prometheus.GaugeValue, float64(s.Remaining), key)
		}
	}
}

// withExtra returns known followed, in sorted order, by any key of seen that
// known lacks: a state or reason added to credpool after this package was
// written is still exported rather than dropped.
func withExtra[K ~string, V any](known []K, seen map[K]V) []K {
	var extra []K
	for k := range seen {
		if !slices.Contains(known, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return known
	}
	slices.Sort(extra)
	return append(slices.Clip(known), extra...)
}

// Base wraps the base RoundTripper the Transport sends attempts through, to
// time every upstream attempt. Pass the result to credpool.WithBase. The
// wrapper hands requests and responses through untouched and never reads a
// body; a nil base means http.DefaultTransport.
//
// Every attempt the Transport makes goes through base, so the histogram's
// count matches credpool_attempts_total, except for requests that WithHosts
// sends through without a key, and the re-checks of credpool.WithRecheck
// (counted in credpool_rechecks_total), which are timed but are not
// attempts.
func (m *Metrics) Base(base http.RoundTripper) http.RoundTripper {
	return &timedTransport{next: base, m: m}
}

// timedTransport observes the time to response headers of each round trip.
type timedTransport struct {
	next http.RoundTripper // nil: http.DefaultTransport
	m    *Metrics
}

func (t *timedTransport) base() http.RoundTripper {
	if t.next == nil {
		return http.DefaultTransport
	}
	return t.next
}

// RoundTrip sends req through the base transport and observes how long the
// response headers took, by status class. A round trip that panics is
// observed as an error, and the panic goes on.
func (t *timedTransport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	start := time.Now()
	defer func() { t.m.observe(codeClass(resp, err), time.Since(start)) }()
	return t.base().RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of the base transport, if
// it has such a method.
func (t *timedTransport) CloseIdleConnections() {
	if c, ok := t.base().(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// observe records one round trip's latency in its class.
func (m *Metrics) observe(class int, d time.Duration) {
	o := m.observers[class]
	if o == nil {
		o = m.latency.WithLabelValues(classes[class])
	}
	o.Observe(d.Seconds())
}

// The values of the histogram's code label, indexed by codeClass.
var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "error"}

const (
	class2xx   = 1
	class4xx   = 3
	class5xx   = 4
	classError = 5
)

// codeClass is the index in classes of a round trip's outcome: its status
// class, or classError when there is no usable response (an error, no
// response at all, or a status outside 100-599).
func codeClass(resp *http.Response, err error) int {
	if err != nil || resp == nil || resp.StatusCode < 100 || resp.StatusCode > 599 {
		return classError
	}
	return resp.StatusCode/100 - 1
}
