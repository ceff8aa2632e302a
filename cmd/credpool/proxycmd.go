// proxycmd.go is the proxy command: its flags and their checks, and serving
// until SIGINT or SIGTERM, then draining the requests in flight.

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// proxyOptions are the proxy command's flags.
type proxyOptions struct {
	upstream, preset, listen, tokenEnv, store, hosts, name string
	keys                                                   keySource
	shutdownTimeout                                        time.Duration
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
Responses stream through unbuffered. The proxy also serves:

	/credpool/         a status page (reset buttons need the client token)
	/credpool/status   every key's state as JSON (labels only, never keys)
	/credpool/reset    POST ?key=<index>: put a key back in rotation
	/metrics           Prometheus metrics

Beyond loopback the proxy requires a client token, read from the variable
named by --client-token-env, that clients send as their API key; on loopback
it is optional, and enforced when set. SIGINT or SIGTERM stops the proxy
after the requests in flight finish (within --shutdown-timeout).
`)
	fs.StringVar(&o.upstream, "upstream", "", "the `URL` of the API to forward to, e.g. https://api.openai.com (required)")
	fs.StringVar(&o.preset, "preset", "", "the provider `name`, for its auth header: "+presetNames()+" (default: Authorization: Bearer)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8787", "the `address` to listen on")
	o.keys.register(fs)
	fs.StringVar(&o.tokenEnv, "client-token-env", defaultTokenEnv, "the environment `variable` holding the token clients must send")
	fs.StringVar(&o.store, "store", "", "share key states through a state `file` or a redis:// URL")
	fs.StringVar(&o.hosts, "hosts", "", "comma-separated `hosts` that may get a key (default: the upstream's host:port)")
	fs.StringVar(&o.name, "name", "", "the pool's `name` in metrics (default: the preset, else the upstream's host)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long to wait for requests in flight on SIGINT/SIGTERM")
	return fs, o
}

// config checks the options and the client token, and returns the proxy's
// configuration. A proxy that would listen beyond loopback without a token
// is refused: it would lend the keys to anyone who can reach it.
func (o *proxyOptions) config(token string) (proxyConfig, error) {
	var cfg proxyConfig
	if o.upstream == "" {
		return cfg, usagef("--upstream is required, e.g. --upstream https://api.openai.com")
	}
	u, err := parseUpstream(o.upstream)
	if err != nil {
		return cfg, err
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return cfg, usagef("--listen %q is not host:port", o.listen)
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
	cfg = proxyConfig{upstream: u, options: opts, hosts: []string{u.Host}, name: o.name, token: token, loopback: isLoopback(o.listen)}
	if o.hosts != "" {
		cfg.hosts = nil
		for _, h := range strings.Split(o.hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				cfg.hosts = append(cfg.hosts, h)
			}
		}
	}
	if cfg.name == "" {
		cfg.name = strings.ToLower(o.preset)
	}
	if cfg.name == "" {
		cfg.name = u.Hostname()
	}
	return cfg, nil
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
	cfg.log = slog.New(slog.NewTextHandler(out.stderr, nil))
	closeStore := func() error { return nil }
	if o.store != "" {
		store, closer, err := openStore(o.store, cfg.log)
		if err != nil {
			return err
		}
		cfg.store, closeStore = store, closer.Close
	}
	defer closeStore()
	p, err := newProxy(cfg, keys)
	if err != nil {
		return err
	}
	defer p.Close()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	attrs := []any{slog.String("listen", base), slog.String("upstream", cfg.upstream.String()),
		slog.Int("keys", len(keys)), slog.String("status_page", base+"/credpool/"),
		slog.Bool("client_token", cfg.token != "")}
	if o.store != "" {
		attrs = append(attrs, slog.String("store", storeName(o.store)))
	}
	cfg.log.Info("credpool proxy: serving", attrs...)
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(cfg.log.Handler(), slog.LevelWarn),
	}
	if err := serve(ctx, srv, ln, o.shutdownTimeout); err != nil {
		return err
	}
	cfg.log.Info("credpool proxy: stopped")
	return nil
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

// Interface checks.
var (
	_ http.Handler = (*proxy)(nil)
	_ io.Closer    = (*proxy)(nil)
)
