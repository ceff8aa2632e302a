// proxycmd.go is the proxy command: its flags and their checks, and serving
// until SIGINT or SIGTERM, then draining the requests in flight.

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/proxy"
)

// defaultTokenEnv is the environment variable read for the client token by
// default.
const defaultTokenEnv = "CREDPOOL_CLIENT_TOKEN"

// minTokenLen is the shortest client token accepted.
const minTokenLen = 16

// defaultReplayBudget is --replay-budget's default: the memory that bodies
// kept for retries may take, together. Each is at most 10 MiB
// (credpool.WithMaxReplayBody), so a few of the largest fit at once.
const defaultReplayBudget = 64 << 20

// proxyOptions are the proxy command's flags.
type proxyOptions struct {
	upstream, preset, listen, tokenEnv, store, hosts, name string
	groups, tiers, weights, keyLimits                      string
	recheckURL, recheckMethod                              string
	keys                                                   keySource
	shutdownTimeout, recheckEvery                          time.Duration
	replayBudget                                           byteSize
}

// proxyFlags returns the proxy command's FlagSet and the options it fills.
func proxyFlags() (*flag.FlagSet, *proxyOptions) {
	o := new(proxyOptions)
	fs := newFlagSet("proxy", "--upstream URL [flags]", `Serve a reverse proxy that forwards every request to the upstream API with a
key from the pool, and moves to another key when one is revoked, out of
credit or rate-limited. Point an SDK's base URL at it, with any API key:

	OpenAI(base_url="http://127.0.0.1:8787/v1", api_key="unused")

The client's own credentials (Authorization, X-Api-Key, Api-Key,
X-Goog-Api-Key, a "key" query parameter) are dropped; the pool's are set.
Responses stream through unbuffered. Request bodies are kept to be sent again
on another key, within --replay-budget for all of them together; a body that
does not fit is sent once, and an answer that called for a retry comes back
with a Credpool-Not-Replayed header saying why there was none. Errors from
the upstream reach the client with the pool's keys replaced by their labels.
The proxy also serves:

	/credpool/         a status page (its buttons need the client token)
	/credpool/status   every key's state as JSON (labels only, never keys)
	/credpool/reset    POST ?key=<index>: put a dead or cooling key back in
	                   rotation (a disabled key stays disabled)
	/credpool/disable  POST ?key=<index>: take a key out of rotation until
	                   it is enabled; nothing else brings it back
	/credpool/enable   POST ?key=<index>: put a disabled key back in rotation
	/metrics           Prometheus metrics

A dead key (revoked or invalid) stays dead until it is reset, unless
--recheck-every asks for a re-check of every dead key at that interval: one
--recheck-method request to --recheck-url with the key, which puts the key
back in rotation only on a 2xx answer.

Beyond loopback the proxy requires a client token, read from the variable
named by --client-token-env, that clients send as their API key; on loopback
it is optional, and enforced when set. Requests from web pages of other
sites (a foreign Origin, or Sec-Fetch-Site cross-site or same-site) are
refused, whatever their method. SIGINT or SIGTERM stops the proxy
after the requests in flight finish (within --shutdown-timeout).

With --keys-file, the proxy reloads the keys when the file changes (it
looks every 2s) and on SIGHUP, without a moment with no keys: a key that
stays keeps its state (a dead key stays dead), a new key joins the rotation,
a removed key is sent no more. The change is logged by label, never by key.
A file that cannot be read, holds no key, or holds a bad one is refused with
a log line, and the running keys stay; so is a file whose count of keys no
longer fits the per-key flags (--groups, --tiers, --weights, and
--key-limits with one value per key), which give their values by position:
changing the count needs new flags and a restart. Keys from --keys-env
cannot change under a running process: SIGHUP then only logs so.
`)
	fs.StringVar(&o.upstream, "upstream", "", "the base `URL` of the API to forward to, as the provider documents it, e.g. https://api.openai.com/v1 (required)")
	fs.StringVar(&o.upstream, "base-url", "", "the same as --upstream")
	fs.StringVar(&o.preset, "preset", "", "the provider `name`, for its auth header: "+presetNames()+" (default: Authorization: Bearer)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8787", "the `address` to listen on")
	o.keys.register(fs)
	fs.StringVar(&o.tokenEnv, "client-token-env", defaultTokenEnv, "the environment `variable` holding the token clients must send")
	fs.StringVar(&o.store, "store", "", "share key states through a state `file` or a redis:// URL")
	fs.StringVar(&o.hosts, "hosts", "", "comma-separated `hosts` that may get a key (default: the upstream's host:port)")
	fs.StringVar(&o.groups, "groups", "", "comma-separated quota `groups`, one per key in the keys' order (\"\" for none): "+
		"keys of one account, whose out-of-credit answer cools them all")
	fs.StringVar(&o.tiers, "tiers", "", "comma-separated `tiers`, one per key in the keys' order: the lowest tier with a usable key serves, higher ones are overflow")
	fs.StringVar(&o.weights, "weights", "", "comma-separated `weights`, one per key in the keys' order: each key's share of its tier's requests (e.g. 0.8,0.2)")
	fs.StringVar(&o.keyLimits, "key-limits", "", "each key's own `limits`, in-flight/per-minute: one pair for every key (8/500) "+
		"or one per key in the keys' order (2/3,20/500); 0 for no limit (0/500, 8/0)")
	fs.StringVar(&o.name, "name", "", "the pool's `name` in metrics (default: the preset, else the upstream's host)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long to wait for requests in flight on SIGINT/SIGTERM")
	fs.DurationVar(&o.recheckEvery, "recheck-every", 0, "re-check every dead key at this `interval`, a minute or more, "+
		"and put it back in rotation if the re-check succeeds (0: never; needs --recheck-url)")
	fs.StringVar(&o.recheckURL, "recheck-url", "", "the `URL` a re-check requests with the dead key: one that costs nothing, "+
		"on a host the keys are sent to, e.g. https://api.openai.com/v1/models")
	fs.StringVar(&o.recheckMethod, "recheck-method", http.MethodGet, "the HTTP `method` of a re-check")
	o.replayBudget = defaultReplayBudget
	fs.Var(&o.replayBudget, "replay-budget", "the most `bytes` of request bodies held at once, by all requests together, to resend them "+
		"on another key, e.g. 64MiB; a body that does not fit is sent once, without retry (0: none)")
	return fs, o
}

// config checks the options and the client token, and returns the proxy's
// configuration. A proxy that would listen beyond loopback without a token
// is refused: it would lend the keys to anyone who can reach it.
func (o *proxyOptions) config(token string) (proxy.Config, error) {
	var cfg proxy.Config
	if o.upstream == "" {
		return cfg, usagef("--upstream is required, e.g. --upstream https://api.openai.com")
	}
	u, err := parseUpstream(o.upstream)
	if err != nil {
		return cfg, err
	}
	if err := checkListen(o.listen); err != nil {
		return cfg, err
	}
	if err := checkToken(o.listen, token, o.tokenEnv); err != nil {
		return cfg, err
	}
	if o.shutdownTimeout <= 0 {
		return cfg, usagef("--shutdown-timeout must be positive")
	}
	_, opts, err := lookupPreset(o.preset)
	if err != nil {
		return cfg, err
	}
	opts = append(opts, credpool.WithReplayBudget(int64(o.replayBudget)))
	perKey, err := o.perKeyOptions()
	if err != nil {
		return cfg, err
	}
	for _, opt := range perKey {
		opts = append(opts, opt)
	}
	recheck, err := o.recheckOptions()
	if err != nil {
		return cfg, err
	}
	opts = append(opts, recheck...)
	cfg = proxy.Config{Upstream: u, Options: opts, Hosts: []string{u.Host}, Name: o.name, Token: token, Loopback: proxy.IsLoopback(o.listen)}
	if o.hosts != "" {
		cfg.Hosts = nil
		for _, h := range strings.Split(o.hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				cfg.Hosts = append(cfg.Hosts, h)
			}
		}
	}
	if cfg.Name == "" {
		cfg.Name = strings.ToLower(o.preset)
	}
	if cfg.Name == "" {
		cfg.Name = u.Hostname()
	}
	return cfg, nil
}

// perKeyOptions reads --groups, --tiers, --weights and --key-limits: one
// value per key, which New and SetKeys check (--key-limits may give one for
// every key). They are KeyOptions, so that a reload of the keys can give
// them again.
func (o *proxyOptions) perKeyOptions() ([]credpool.KeyOption, error) {
	var opts []credpool.KeyOption
	if o.groups != "" {
		opts = append(opts, credpool.WithGroups(list(o.groups)...))
	}
	if o.tiers != "" {
		tiers, err := parseEach(list(o.tiers), "--tiers", strconv.Atoi)
		if err != nil {
			return nil, err
		}
		opts = append(opts, credpool.WithTiers(tiers...))
	}
	if o.weights != "" {
		weights, err := parseEach(list(o.weights), "--weights", func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
		if err != nil {
			return nil, err
		}
		opts = append(opts, credpool.WithWeights(weights...))
	}
	if o.keyLimits != "" {
		limits, err := parseKeyLimits(o.keyLimits)
		if err != nil {
			return nil, err
		}
		opts = append(opts, credpool.WithKeyLimits(limits...))
	}
	return opts, nil
}

// perKeyFlag is a per-key flag that is set, and how many values it gives.
type perKeyFlag struct {
	name   string
	values int
}

// perKeyFlags returns the per-key flags that give one value per key, for a
// reload to say which no longer fits the keys: SetKeys would only name the
// option. --key-limits with one pair is for every key, and fits any count.
func (o *proxyOptions) perKeyFlags() []perKeyFlag {
	var out []perKeyFlag
	for _, f := range []struct{ name, value string }{
		{"--groups", o.groups}, {"--tiers", o.tiers}, {"--weights", o.weights}, {"--key-limits", o.keyLimits},
	} {
		if n := len(list(f.value)); f.value != "" && (n > 1 || f.name != "--key-limits") {
			out = append(out, perKeyFlag{name: f.name, values: n})
		}
	}
	return out
}

// parseKeyLimits reads --key-limits: comma-separated in-flight/per-minute
// pairs, 0 for no limit in either place. Both halves are required: a bare
// number would leave the reader to guess which limit it is. An error names
// the item's place and what is wrong with it, as parseEach does.
func parseKeyLimits(s string) ([]credpool.KeyLimit, error) {
	items := list(s)
	out := make([]credpool.KeyLimit, len(items))
	for i, item := range items {
		inFlight, perMinute, ok := strings.Cut(item, "/")
		if !ok {
			return nil, usagef("--key-limits: item %d, %q, is not in-flight/per-minute, e.g. 8/500 (0 for no limit)", i+1, item)
		}
		n, err := strconv.Atoi(strings.TrimSpace(inFlight))
		if err != nil || n < 0 || n > math.MaxInt32 {
			return nil, usagef("--key-limits: item %d, %q: the in-flight count is not a whole number of 0 or more", i+1, item)
		}
		rate, err := strconv.ParseFloat(strings.TrimSpace(perMinute), 64)
		if err != nil || !(rate >= 0) || math.IsInf(rate, 0) {
			return nil, usagef("--key-limits: item %d, %q: the per-minute rate is not a number of 0 or more", i+1, item)
		}
		out[i] = credpool.KeyLimit{InFlight: n, PerMinute: rate}
	}
	return out, nil
}

// minRecheckEvery is the shortest --recheck-every, as credpool.WithRecheck
// has it: a dead key is revoked more often than not, and each re-check is a
// request the provider sees from it.
const minRecheckEvery = time.Minute

// recheckOptions reads --recheck-every, --recheck-url and --recheck-method.
// The URL is required, not guessed from the upstream: a re-check must cost
// nothing, and only the operator knows which request of their provider does.
// Whether its host is one the keys are sent to is New's to say, which knows
// --hosts as the pool matches it.
func (o *proxyOptions) recheckOptions() ([]credpool.Option, error) {
	if o.recheckEvery == 0 {
		if o.recheckURL != "" {
			return nil, usagef("--recheck-url is set but --recheck-every is not: set how often to re-check dead keys, e.g. --recheck-every 10m")
		}
		return nil, nil
	}
	if o.recheckEvery < minRecheckEvery {
		return nil, usagef("--recheck-every %v is under a minute, the shortest interval (0 turns re-checks off)", o.recheckEvery)
	}
	if o.recheckURL == "" {
		return nil, usagef("--recheck-every needs --recheck-url, a request that costs nothing, e.g. --recheck-url https://api.openai.com/v1/models")
	}
	u, err := url.Parse(o.recheckURL)
	switch {
	case err != nil:
		return nil, usagef("--recheck-url is not a URL")
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return nil, usagef("--recheck-url must be an absolute http:// or https:// URL")
	case u.User != nil || u.Query().Has("key"):
		return nil, usagef("--recheck-url must not hold credentials: the re-check carries the key it checks")
	}
	if _, err := http.NewRequest(o.recheckMethod, u.String(), nil); o.recheckMethod == "" || err != nil {
		return nil, usagef("--recheck-method %q is not an HTTP method, e.g. GET", o.recheckMethod)
	}
	return []credpool.Option{credpool.WithRecheck(o.recheckEvery, o.recheckMethod, o.recheckURL)}, nil
}

// list splits a comma-separated flag value, trimming each item.
func list(s string) []string {
	items := strings.Split(s, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	return items
}

// parseEach parses every item with parse, naming the flag and the item's
// place in the error.
func parseEach[T any](items []string, flag string, parse func(string) (T, error)) ([]T, error) {
	out := make([]T, len(items))
	for i, item := range items {
		v, err := parse(item)
		if err != nil {
			return nil, usagef("%s: item %d, %q, is not a number", flag, i+1, item)
		}
		out[i] = v
	}
	return out, nil
}

// checkListen checks the --listen address as net.Listen will read it, so
// that what is wrong with it is reported first: a bad port is no reason to
// call the host not loopback, as the token check that follows would.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	switch {
	case err != nil:
		return usagef("--listen %q is not host:port, e.g. 127.0.0.1:8787", addr)
	case port == "":
		return usagef("--listen %q has no port, e.g. 127.0.0.1:8787 (port 0 picks a free one)", addr)
	case strings.Trim(port, "+-0123456789") == "":
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return usagef("--listen %q: port %s is out of range (0 to 65535)", addr, port)
		}
	default:
		if _, err := net.LookupPort("tcp", port); err != nil {
			return usagef("--listen %q: port %q is not a number or a service name", addr, port)
		}
	}
	return nil
}

// checkToken validates the client token for a proxy listening on listen:
// beyond loopback a token is required, and a token, where set, must be long
// enough and have no spaces. Errors name the variable, never its value.
func checkToken(listen, token, env string) error {
	switch {
	case token == "" && !proxy.IsLoopback(listen):
		return usagef("--listen %s is not a loopback address, and an open proxy would lend the keys to anyone who can reach it: "+
			"set a client token in $%s (or the variable named by --client-token-env), and have clients send it as "+
			"\"Authorization: Bearer <token>\" (their API key)", listen, env)
	case token == "":
		return nil
	case len(token) < minTokenLen:
		return usagef("the client token in $%s is shorter than %d characters; make one with: openssl rand -hex 32", env, minTokenLen)
	case strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return usagef("the client token in $%s has a space or control character", env)
	}
	return nil
}

// parseUpstream checks the upstream URL: http or https, a host, and no
// credentials, which belong in the key pool.
func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, usagef("--upstream is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, usagef("--upstream must be an http:// or https:// URL")
	case u.Host == "":
		return nil, usagef("--upstream has no host")
	case u.User != nil || u.Query().Has("key"):
		return nil, usagef("--upstream must not hold credentials: keys go in --keys-file or --keys-env")
	case u.Fragment != "":
		return nil, usagef("--upstream must not have a #fragment")
	}
	return u, nil
}

// runProxy is the proxy command.
func runProxy(ctx context.Context, out output, args []string) error {
	fs, o := proxyFlags()
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := o.config(strings.TrimSpace(os.Getenv(o.tokenEnv)))
	if err != nil {
		return err
	}
	keys, err := o.keys.load(fs)
	if err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewTextHandler(out.stderr, nil))
	closeStore := func() error { return nil }
	if o.store != "" {
		store, closer, err := openStore(o.store, cfg.Log)
		if err != nil {
			return err
		}
		cfg.Store, closeStore = store, closer.Close
	}
	defer closeStore()
	p, err := proxy.New(cfg, keys)
	if err != nil {
		return err
	}
	defer p.Close()
	// SIGHUP is heard from before the proxy says it serves: unheard, it
	// would end the process. The reloader stops before the pool closes.
	reloader, err := o.reloader(p, keys, cfg.Log)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stopReloads := reloader.start(ctx, hup)
	defer stopReloads()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	attrs := []any{slog.String("listen", base), slog.String("upstream", cfg.Upstream.String()),
		slog.Int("keys", len(keys)), slog.String("status_page", base+"/credpool/"),
		slog.Bool("client_token", cfg.Token != "")}
	if o.store != "" {
		attrs = append(attrs, slog.String("store", storeName(o.store)))
	}
	if o.recheckEvery > 0 {
		attrs = append(attrs, slog.Duration("recheck_every", o.recheckEvery), slog.String("recheck", o.recheckMethod+" "+o.recheckURL))
	}
	if o.keys.file != "" {
		attrs = append(attrs, slog.String("keys_file", o.keys.file), slog.Duration("keys_poll", keysPollEvery))
	}
	cfg.Log.Info("credpool proxy: serving", attrs...)
	srv := newServer(p, cfg.Log)
	if err := serve(ctx, srv, ln, o.shutdownTimeout); err != nil {
		return err
	}
	cfg.Log.Info("credpool proxy: stopped")
	return nil
}

// newServer returns the proxy's server. A request's headers must arrive
// within ReadHeaderTimeout, and be no larger than an API call needs, and a
// connection left idle between requests closes after IdleTimeout. It has no
// ReadTimeout nor WriteTimeout: each bounds a whole request or response, and
// would cut a large honest upload or a stream that runs for minutes.
// Bodies are timed by their progress instead (internal/proxy/bodytimer.go).
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// serve serves on ln until ctx ends, then shuts srv down: it stops
// accepting, and waits up to timeout for the requests in flight to finish
// (a stream included) before it cuts the rest off.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err // Serve failed before any shutdown
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("requests still in flight after %s were cut off: %w", timeout, err)
	}
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
