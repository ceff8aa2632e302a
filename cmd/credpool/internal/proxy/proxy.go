// proxy.go builds the proxy's handler: a credpool.Transport over the keys,
// the reverse proxy that forwards every request through it to the upstream,
// and the routes the proxy answers itself (/credpool/..., /metrics).

// Package proxy is the server of the credpool proxy command: a reverse proxy
// that puts a key from the pool on every request it forwards, with the
// status page and API, the key actions (reset, disable, enable) and metrics
// it answers itself, and the guards that keep it from being an open relay.
// The command parses the flags, loads the keys and runs the http.Server;
// this package is the http.Handler it serves, and Server.SetKeys, through
// which the command reloads the keys.
package proxy

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/credpoolprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is what New needs, the command's flags already checked.
type Config struct {
	Upstream *url.URL          // the API to forward to
	Options  []credpool.Option // the preset's, then any of the caller's
	Hosts    []string          // the hosts that get a key
	Name     string            // the "pool" label of the metrics
	Token    string            // the client token; "" for none (loopback only)
	Loopback bool              // listening on loopback only
	Store    credpool.Store    // nil for none
	Log      *slog.Logger      // nil: no logs

	base http.RoundTripper // nil: a clone of http.DefaultTransport (tests set it)
	body bodyTiming        // the zero value: defaultBodyTiming (tests set it)
}

// Server is the proxy's handler and the pool behind it. Close it once the
// http.Server that serves it has shut down.
type Server struct {
	pool    *credpool.Transport
	handler http.Handler
	log     *slog.Logger
	// scrub holds every key the pool has had, for the errors handed over:
	// SetKeys swaps in a new scrubber, and a body being scrubbed keeps the
	// one it started with.
	scrub atomic.Pointer[scrubber]

	keysMu sync.Mutex        // held by SetKeys, so that two reloads do not interleave
	known  map[string]string // every key the pool has had, current or removed, and its last label
}

// Interface checks.
var (
	_ http.Handler = (*Server)(nil)
	_ io.Closer    = (*Server)(nil)
)

// keyHeaders are the headers in which clients send a bare API key, and
// credentialHeaders those and Authorization. The client's own are dropped
// before a request is forwarded, whatever the preset: the pool sets its own,
// and the client's token goes no further.
var (
	keyHeaders        = []string{"X-Api-Key", "Api-Key", "X-Goog-Api-Key"}
	credentialHeaders = append([]string{"Authorization"}, keyHeaders...)
)

// New builds the proxy over keys.
func New(cfg Config, keys []string) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	base := cfg.base
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64 // every request goes to one host
		base = t
	}
	metrics := credpoolprom.New(
		credpoolprom.WithConstLabels(prometheus.Labels{"pool": cfg.Name}),
		credpoolprom.WithPerKey(true))
	opts := append([]credpool.Option{
		credpool.WithBase(metrics.Base(base)),
		credpool.WithHosts(cfg.Hosts...),
		credpool.WithLogger(cfg.Log),
		credpool.WithKeyHeader(KeyHeader),
	}, cfg.Options...)
	if cfg.Store != nil {
		opts = append(opts, credpool.WithStore(cfg.Store))
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

	p := &Server{pool: pool, log: cfg.Log, known: make(map[string]string, len(keys))}
	p.learn(keys)
	g := newGuard(cfg.Token)
	mux := http.NewServeMux()
	mux.Handle("/credpool/{$}", only(http.MethodGet, pageHandler()))
	mux.Handle("/credpool/status", g.require(only(http.MethodGet, http.HandlerFunc(p.status))))
	for _, a := range keyActions {
		mux.Handle("/credpool/"+a.name, g.require(only(http.MethodPost, p.serveAction(a))))
	}
	mux.Handle("/credpool/", http.NotFoundHandler()) // never forwarded
	mux.Handle("/metrics", g.require(only(http.MethodGet, promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))))
	mux.Handle("/", g.require(p.reverseProxy(cfg.Upstream)))
	p.handler = browserSafe(timeBodies(mux, cfg.body.orDefault()), cfg.Loopback)
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
func (p *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// Close stops the pool's store goroutines and closes its idle connections.
func (p *Server) Close() error {
	err := p.pool.Close()
	p.pool.CloseIdleConnections()
	return err
}

// UpstreamFor is the upstream URL to join a client's path to. Providers
// document their base URL with its version (https://api.openai.com/v1), and
// SDKs send that version in every path (/v1/chat/completions): a path that
// already starts with the upstream's path is sent as it is, not under it
// again (/v1/v1/...); any other is joined under it. The check command
// joins its path the same way.
func UpstreamFor(upstream *url.URL, path string) *url.URL {
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
func (p *Server) reverseProxy(upstream *url.URL) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(UpstreamFor(upstream, pr.In.URL.Path))
			dropCredentials(pr.Out)
			acceptScrubbable(pr.Out)
			pr.Out = withAffinity(pr.Out)
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
func (p *Server) modifyResponse(resp *http.Response) error {
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

// KeyHeader names the key that served a response, by its label. A client
// that sends it back on a request pins that request to the same key (see
// credpool.Pin); SessionHeader keeps a session's requests on one key while it
// is usable (see credpool.Session). Neither goes upstream.
const (
	KeyHeader     = "Credpool-Key"
	SessionHeader = "Credpool-Session"
)

// withAffinity turns the client's affinity headers into the request's
// context, and removes them.
func withAffinity(out *http.Request) *http.Request {
	pin, session := out.Header.Get(KeyHeader), out.Header.Get(SessionHeader)
	if pin == "" && session == "" {
		return out
	}
	out.Header.Del(KeyHeader)
	out.Header.Del(SessionHeader)
	ctx := out.Context()
	if pin != "" {
		ctx = credpool.Pin(ctx, pin)
	} else {
		ctx = credpool.Session(ctx, session)
	}
	return out.WithContext(ctx)
}

// proxyError answers a request that got no response from upstream: 408 when
// the client's body was too slow, 503 with Retry-After when no key is
// usable, 502 otherwise.
func (p *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
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
	var pinned *credpool.PinnedKeyError
	if errors.As(err, &pinned) {
		switch pinned.State {
		case "":
			writeError(w, http.StatusBadRequest, err.Error(), "unknown_key")
		case credpool.StateExhausted:
			w.Header().Set("Retry-After", retryAfter(pinned.ResetAt))
			writeError(w, http.StatusServiceUnavailable, err.Error(), "pinned_key_exhausted")
		case credpool.StateDisabled:
			writeError(w, http.StatusConflict, err.Error(), "pinned_key_disabled")
		default:
			writeError(w, http.StatusConflict, err.Error(), "pinned_key_dead")
		}
		return
	}
	var noKeys *credpool.NoKeysError
	if errors.As(err, &noKeys) {
		if !noKeys.SoonestReset.IsZero() {
			w.Header().Set("Retry-After", retryAfter(noKeys.SoonestReset))
		}
		writeError(w, http.StatusServiceUnavailable, p.scrub.Load().String(err.Error()), "no_usable_key")
		return
	}
	// The library names keys by label; the scrub is for errors it did not
	// write, such as a base transport's that quotes a URL.
	msg := p.scrub.Load().String(err.Error())
	p.log.LogAttrs(r.Context(), slog.LevelWarn, "credpool proxy: upstream failed",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", msg))
	writeError(w, http.StatusBadGateway, "credpool proxy: upstream failed: "+msg, "bad_gateway")
}

// retryAfter is a Retry-After value for a key that returns at t: whole
// seconds, at least one.
func retryAfter(t time.Time) string {
	return strconv.Itoa(max(1, int(math.Ceil(time.Until(t).Seconds()))))
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
