// proxy.go builds the proxy's handler: a credpool.Transport over the keys,
// the reverse proxy that forwards every request through it to the upstream,
// and the routes the proxy answers itself (/credpool/..., /metrics).

package main

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/credpoolprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// proxyConfig is what newProxy needs, flags already checked.
type proxyConfig struct {
	upstream *url.URL
	options  []credpool.Option // the preset's, then any of the caller's
	hosts    []string          // the hosts that get a key
	name     string            // the "pool" label of the metrics
	token    string            // the client token; "" for none (loopback only)
	loopback bool              // listening on loopback only
	store    credpool.Store    // nil for none
	log      *slog.Logger
	base     http.RoundTripper // nil: a clone of http.DefaultTransport
	body     bodyTiming        // the zero value: defaultBodyTiming
}

// proxy is the proxy's handler and the pool behind it.
type proxy struct {
	pool    *credpool.Transport
	handler http.Handler
	log     *slog.Logger
	scrub   *scrubber // the pool's keys, for the errors handed over
}

// keyHeaders are the headers in which clients send a bare API key, and
// credentialHeaders those and Authorization. The client's own are dropped
// before a request is forwarded, whatever the preset: the pool sets its own,
// and the client's token goes no further.
var (
	keyHeaders        = []string{"X-Api-Key", "Api-Key", "X-Goog-Api-Key"}
	credentialHeaders = append([]string{"Authorization"}, keyHeaders...)
)

// newProxy builds the proxy over keys.
func newProxy(cfg proxyConfig, keys []string) (*proxy, error) {
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	base := cfg.base
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64 // every request goes to one host
		base = t
	}
	metrics := credpoolprom.New(
		credpoolprom.WithConstLabels(prometheus.Labels{"pool": cfg.name}),
		credpoolprom.WithPerKey(true))
	opts := append([]credpool.Option{
		credpool.WithBase(metrics.Base(base)),
		credpool.WithHosts(cfg.hosts...),
		credpool.WithLogger(cfg.log),
	}, cfg.options...)
	if cfg.store != nil {
		opts = append(opts, credpool.WithStore(cfg.store))
	}
	pool, err := credpool.New(keys, opts...)
	if err != nil {
		return nil, err
	}
	metrics.Observe(pool)
	registry := prometheus.NewRegistry()
	registry.MustRegister(metrics,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	p := &proxy{pool: pool, log: cfg.log, scrub: newScrubber(keys, labels(pool))}
	g := newGuard(cfg.token)
	mux := http.NewServeMux()
	mux.Handle("/credpool/{$}", only(http.MethodGet, pageHandler()))
	mux.Handle("/credpool/status", g.require(only(http.MethodGet, http.HandlerFunc(p.status))))
	mux.Handle("/credpool/reset", g.require(only(http.MethodPost, http.HandlerFunc(p.reset))))
	mux.Handle("/credpool/", http.NotFoundHandler()) // never forwarded
	mux.Handle("/metrics", g.require(only(http.MethodGet, promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))))
	mux.Handle("/", g.require(p.reverseProxy(cfg.upstream)))
	p.handler = browserSafe(timeBodies(mux, cfg.body.orDefault()), cfg.loopback)
	return p, nil
}

// labels returns the pool's key labels, in the order of its keys.
func labels(pool *credpool.Transport) []string {
	status := pool.Keys()
	out := make([]string, len(status))
	for i, s := range status {
		out[i] = s.Label
	}
	return out
}

// ServeHTTP serves the proxy.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// Close stops the pool's store goroutines and closes its idle connections.
func (p *proxy) Close() error {
	err := p.pool.Close()
	p.pool.CloseIdleConnections()
	return err
}

// upstreamFor is the upstream URL to join a client's path to. Providers
// document their base URL with its version (https://api.openai.com/v1), and
// SDKs send that version in every path (/v1/chat/completions): a path that
// already starts with the upstream's path is sent as it is, not under it
// again (/v1/v1/...); any other is joined under it.
func upstreamFor(upstream *url.URL, path string) *url.URL {
	base := strings.TrimRight(upstream.Path, "/")
	if base == "" || path != base && !strings.HasPrefix(path, base+"/") {
		return upstream
	}
	u := *upstream
	u.Path, u.RawPath = "", ""
	return &u
}

// reverseProxy forwards to upstream through the pool. Responses stream:
// every write is flushed at once, so server-sent events reach the client as
// they are sent.
func (p *proxy) reverseProxy(upstream *url.URL) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstreamFor(upstream, pr.In.URL.Path))
			dropCredentials(pr.Out)
			acceptScrubbable(pr.Out)
		},
		Transport:      p.pool,
		FlushInterval:  -1,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.proxyError,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
}

// modifyResponse prepares an upstream response for the client: it never
// carries CORS headers, and an error never carries a key.
func (p *proxy) modifyResponse(resp *http.Response) error {
	dropCORS(resp.Header)
	dropCORS(resp.Trailer)
	return p.scrubError(resp)
}

// dropCredentials removes the credentials the client sent: its headers and a
// "key" query parameter (Gemini's). The pool sets its own.
func dropCredentials(out *http.Request) {
	for _, h := range credentialHeaders {
		out.Header.Del(h)
	}
	if q := out.URL.Query(); q.Has("key") {
		q.Del("key")
		out.URL.RawQuery = q.Encode()
	}
}

// proxyError answers a request that got no response from upstream: 408 when
// the client's body was too slow, 503 with Retry-After when no key is
// usable, 502 otherwise.
func (p *proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if bodyTimedOut(r.Context()) {
		// Reading the body cancelled the request too; the client may still
		// read the answer.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestTimeout, "credpool proxy: the request body came too slowly, or stopped coming", "request_timeout")
		return
	}
	if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		return // the client went away; nobody reads an answer
	}
	var noKeys *credpool.NoKeysError
	if errors.As(err, &noKeys) {
		if !noKeys.SoonestReset.IsZero() {
			secs := math.Ceil(time.Until(noKeys.SoonestReset).Seconds())
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(secs))))
		}
		writeError(w, http.StatusServiceUnavailable, p.scrub.String(err.Error()), "no_usable_key")
		return
	}
	// The library names keys by label; the scrub is for errors it did not
	// write, such as a base transport's that quotes a URL.
	msg := p.scrub.String(err.Error())
	p.log.LogAttrs(r.Context(), slog.LevelWarn, "credpool proxy: upstream failed",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", msg))
	writeError(w, http.StatusBadGateway, "credpool proxy: upstream failed: "+msg, "bad_gateway")
}

// only refuses every method but method (and HEAD, with GET).
func only(method string, h http.Handler) http.Handler {
	allow := method
	if method == http.MethodGet {
		allow += ", " + http.MethodHead
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && (method != http.MethodGet || r.Method != http.MethodHead) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here; use "+allow, "method_not_allowed")
			return
		}
		h.ServeHTTP(w, r)
	})
}
