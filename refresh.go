package credpool

import (
	"context"
	"errors"
	"fmt"
)

// Refresher returns a fresh credential for the key at index (its position in
// the slice given to New, or to the last SetKeys), such as a new OAuth access
// token. It is called with no lock held, at most once at a time per key, and
// with the context of the request that needs it.
type Refresher func(ctx context.Context, index int) (string, error)

// WithRefresh makes the keys refreshable credentials. When a key is rejected
// in a way a new credential can fix (an expired or invalid token, not a
// revoked one), the request refreshes that key once and retries; requests
// that meet the same rejection meanwhile wait for that one refresh instead of
// starting their own. A revocation (token_revoked, invalid_grant,
// refresh_token_reused...) kills the key without a refresh, and a refresh that
// fails leaves the verdict to stand, so nothing loops.
func WithRefresh(f Refresher) Option {
	return optionFunc(func(c *config) {
		if f == nil {
			c.invalid("WithRefresh: nil Refresher")
			return
		}
		c.refresh = f
	})
}

// refresh tries to fix an auth failure on the leased key by refreshing it,
// at most once per key per request. It reports whether to retry at once, and
// the context's error if the request ended while it waited.
func (c *call) refresh(l lease, v verdict) (retry bool, _ error) {
	if c.t.cfg.refresh == nil || v.final || (v.reason != ReasonAuth && v.reason != ReasonAuthPermanent) {
		return false, nil
	}
	for _, i := range c.refreshed {
		if i == l.index {
			return false, nil
		}
	}
	c.refreshed = append(c.refreshed, l.index)
	done, lead := c.pool.startRefresh(l)
	ctx := c.req.Context()
	switch {
	case done == nil:
		return true, nil // refreshed or reset since this attempt was sent
	case !lead:
		select {
		case <-done:
			return true, nil
		case <-ctx.Done():
			return false, fmt.Errorf("credpool: waiting for a refresh: %w", ctx.Err())
		}
	}
	token, err := c.t.cfg.refresh(ctx, l.index)
	if problem := keyProblem(token); err == nil && problem != "" {
		err = errors.New("the new key " + problem)
	}
	if err != nil {
		c.pool.endRefresh(l, "")
		label := c.pool.slots[l.index].label
		msg := scrubber(label, l.value()[0][len(c.t.cfg.prefix):], token).Replace(err.Error())
		c.t.cfg.logger.WarnContext(ctx, "credpool: refresh failed",
			"key", label, "index", l.index, "error", redactTokens(msg))
		return false, nil
	}
	c.pool.endRefresh(l, c.t.cfg.prefix+token)
	return true, nil
}

// startRefresh claims the refresh of a leased key. The first request to ask
// leads (lead is true) and must call endRefresh; a request that asks while a
// refresh runs gets its done channel to wait on; and a request whose lease is
// older than the key's last refresh or Reset gets neither, since the key has
// already changed under it and a retry is all it needs.
func (p *pool) startRefresh(l lease) (done <-chan struct{}, lead bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.slots[l.index]
	switch {
	case s.refreshing != nil:
		return s.refreshing, false
	case !p.current(l) || s.state == StateDead:
		return nil, false
	}
	s.refreshing = make(chan struct{})
	return s.refreshing, true
}

// endRefresh ends a refresh: with the new header value on success, which
// makes verdicts on attempts sent with the old one stale, or with "" when the
// refresh failed. It wakes the requests waiting for it.
func (p *pool) endRefresh(l lease, header string) {
	if header != "" {
		// In the generation that holds the key now, should SetKeys have
		// replaced p while the refresh ran.
		if q, ql, ok := p.lockFor(l); ok {
			q.renew(ql.index, header)
			q.mu.Unlock()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.slots[l.index]
	close(s.refreshing)
	s.refreshing = nil
}
