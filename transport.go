// Package credpool is an http.RoundTripper that spreads requests over a pool
// of API keys and keeps the pool healthy: a revoked key leaves rotation for
// good, a rate-limited or out-of-credit key cools until the provider says it
// may return, and a request that meets either is replayed at once on another
// key. Overloaded and failing servers get a backoff and a bounded retry.
//
// Successful responses pass through untouched and unbuffered, so streams flow
// as they arrive. Only error responses are read, up to a bound, to classify
// them, and the caller still gets their whole body.
package credpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Transport is an http.RoundTripper that sets an API key from its pool on
// each request and moves to another key when one fails. It is safe for
// concurrent use. Create it with New.
type Transport struct {
	// Every field is a pointer or a plain value that holds no key, so
	// that printing a Transport with any verb cannot show one.
	cfg      *config
	ring     *keyring
	counters *counters
	canRetry bool // whether any request can make a second attempt
	budget   *replayBudget
	sync     *syncer    // nil without a Store
	recheck  *rechecker // nil without WithRecheck
}

// New returns a Transport for keys, configured by opts. It refuses an empty
// pool, an empty or duplicated key, and a key with a space, control or
// non-ASCII byte (which could split a header), naming the key by its index
// only.
func New(keys []string, opts ...Option) (*Transport, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if opt == nil {
			cfg.invalid("nil Option")
			continue
		}
		opt.apply(cfg)
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	if err := validateKeys(keys); err != nil {
		return nil, err
	}
	if err := cfg.checkPerKey(len(keys)); err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:      cfg,
		ring:     newKeyring(newPool(keys, cfg)),
		counters: new(counters),
		canRetry: len(keys) > 1 || cfg.maxRetries > 0 || cfg.maxWait > 0,
		budget:   &replayBudget{limit: cfg.replayBudget},
	}
	if cfg.recheck != nil {
		if err := t.checkRecheck(); err != nil {
			return nil, err
		}
		t.recheck = startRecheck(t)
	}
	if cfg.store != nil {
		t.sync = startSync(t)
	}
	return t, nil
}

// Close stops the re-checks of WithRecheck, and the goroutines that share
// state through the Store of WithStore, after a last attempt, of at most a
// second, to write what is pending. Without either it does nothing. The
// Transport still works after Close, on local state only.
func (t *Transport) Close() error {
	if t.recheck != nil {
		t.recheck.stop()
	}
	if t.sync != nil {
		t.sync.stop()
	}
	return nil
}

// RoundTrip sends req with a key from the pool, replaying it on another key
// when the provider rejects the key, and after a backoff when the provider is
// in trouble. It never modifies req. It returns a response with a nil error,
// or a nil response with an error: ErrNoKeys when no key can be used, the
// context's error when the request was cancelled while waiting, or the base
// transport's error.
func (t *Transport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	if req == nil {
		return nil, errors.New("credpool: nil request")
	}
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("credpool: request has no URL")
	}
	p := t.pool()
	if p == nil {
		closeBody(req)
		return nil, errNotNew
	}
	if !t.keyed(req) {
		return t.cfg.base.RoundTrip(req)
	}
	c := call{t: t, pool: p, req: req, avoid: -1}
	if affinityUsed.Load() {
		c.readAffinity(req.Context())
	}
	if err := c.body.load(req, t.cfg.maxReplayBody, t.budget, t.canRetry); err != nil {
		return nil, err
	}
	defer c.finish(&resp, &err)
	return c.run()
}

// errNotNew is the error of a Transport that New did not make.
var errNotNew = errors.New("credpool: Transport not made by New")

// Keys returns a snapshot of every key, in the order given to New, or to the
// last SetKeys.
func (t *Transport) Keys() []KeyStatus {
	if t.pool() == nil {
		return nil
	}
	return t.pool().status(time.Now())
}

// CloseIdleConnections closes the idle connections of the base transport, if
// it has such a method.
func (t *Transport) CloseIdleConnections() {
	if t.cfg == nil {
		return
	}
	if c, ok := t.cfg.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// String describes the pool by counts per state, never by its keys. (The
// verbs that do not call String, such as %#v and %d, print the Transport's
// fields, which are pointers: no way of printing it reaches a key.)
func (t Transport) String() string {
	if t.pool() == nil {
		return "credpool.Transport{not made by New}"
	}
	n := t.pool().exhausted(time.Now(), -1)
	return fmt.Sprintf("credpool.Transport{keys: %d, ok: %d, exhausted: %d, dead: %d, disabled: %d, strategy: %s}",
		n.OK+n.Exhausted+n.Dead+n.Disabled, n.OK, n.Exhausted, n.Dead, n.Disabled, t.cfg.strategy)
}

// emit logs a state change and hands it to the user's callback. It is called
// with no lock held.
func (t *Transport) emit(ctx context.Context, c StateChange) {
	level := slog.LevelInfo
	if c.To == StateDead || c.Suspect != "" {
		level = slog.LevelWarn
	}
	if t.cfg.logger.Enabled(ctx, level) {
		attrs := []slog.Attr{
			slog.String("key", c.Label), slog.Int("index", c.Index),
			slog.String("from", string(c.From)), slog.String("to", string(c.To)),
		}
		if c.Reason != "" {
			attrs = append(attrs, slog.String("reason", string(c.Reason)))
		}
		if c.Status != 0 {
			attrs = append(attrs, slog.Int("status", c.Status))
		}
		if !c.ResetAt.IsZero() {
			attrs = append(attrs, slog.Time("reset_at", c.ResetAt))
		}
		if c.Suspect != "" {
			attrs = append(attrs, slog.String("suspect", c.Suspect))
		}
		t.cfg.logger.LogAttrs(ctx, level, "credpool: key state changed", attrs...)
	}
	if t.cfg.onStateChange != nil {
		t.cfg.onStateChange(c)
	}
}

// closeBody closes a request body on a path that sends no attempt.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
