package credpool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// backOff waits before a transient retry: the backoff's next interval, or the
// provider's hint if that is longer, and then goes again. It hands back the
// last response, without waiting, when the retry budget is spent, the
// backoff stops, or the wait would outlast WithMaxWait or the context's
// deadline (sleeping past the deadline only to fail is worse than answering
// now); it fails with the context's error if the context ends while it waits.
func (c *call) backOff(ctx context.Context, hint time.Duration) (step, error) {
	c.transient++
	if c.transient > c.t.cfg.maxRetries {
		return handBack, nil
	}
	if c.backoff == nil {
		c.backoff = c.t.cfg.newBackoff()
	}
	d := c.backoff.NextBackOff()
	if d == backoff.Stop {
		return handBack, nil
	}
	d = max(d, hint)
	if hint > 0 && d > c.waitLeft() {
		return handBack, nil
	}
	if deadline, ok := ctx.Deadline(); ok && time.Now().Add(d).After(deadline) {
		return handBack, nil
	}
	if err := c.sleep(ctx, d, nil); err != nil {
		return fail, fmt.Errorf("credpool: backing off: %w", err)
	}
	c.t.counters.retries.Add(1)
	return again, nil
}

// waitForKey waits for the soonest cooling key when no key is usable, or for
// room when the usable keys are full (WithKeyLimits), if that comes within
// WithMaxWait and before the context's deadline, and then goes again.
// Otherwise the call ends: with the provider's last response if an attempt
// had one, since its words say more than ours, else with the *NoKeysError,
// or for a pinned request, the *PinnedKeyError; or with the context's error
// if the context ended. A pinned request, and a session, wait for their own
// key.
//
// Only a look again without a wait counts against the call's bound on looks
// (c.waits): a wait is bounded by WithMaxWait, and may end early many times
// over, woken by each SetKeys or Reset, without being a loop.
func (c *call) waitForKey(ctx context.Context) (step, error) {
	wake := c.pool.waiters.enter()
	defer c.pool.waiters.leave()
	now := time.Now()
	only := -1
	if c.aff != nil {
		only = c.aff.key(c.pool)
	}
	if c.pinned() && only < 0 {
		return c.pinFailed()
	}
	noKeys := c.pool.exhausted(now, only)
	switch {
	case noKeys.AtLimit > 0 && noKeys.AtLimit == noKeys.OK:
		return c.waitForRoom(ctx, noKeys, now, wake)
	case noKeys.OK > 0:
		c.waits++
		return again, nil // a cooldown ended, or room was made, since acquire looked
	case c.pinned():
		return c.pinFailed()
	case noKeys.SoonestReset.IsZero(), noKeys.SoonestReset.Sub(now) > c.waitLeft():
		return c.noKey(ctx, noKeys)
	}
	if deadline, ok := ctx.Deadline(); ok && noKeys.SoonestReset.After(deadline) {
		return c.noKey(ctx, noKeys)
	}
	c.t.counters.waits.Add(1)
	if err := c.sleep(ctx, noKeys.SoonestReset.Sub(now), wake); err != nil {
		return fail, fmt.Errorf("credpool: waiting for a key: %w", err)
	}
	return again, nil
}

// waitForRoom waits until a place in flight is released or a key's rate
// makes room, within what is left of WithMaxWait and before the context's
// deadline; the call then goes again. A wait for room is bounded by time,
// not counted: under load, a request may be woken by a release that another
// takes first, and wait again.
func (c *call) waitForRoom(ctx context.Context, noKeys *NoKeysError, now time.Time, wake <-chan struct{}) (step, error) {
	d := c.waitLeft()
	if !noKeys.roomAt.IsZero() {
		d = min(d, noKeys.roomAt.Sub(now))
	}
	if deadline, ok := ctx.Deadline(); ok {
		d = min(d, deadline.Sub(now))
	}
	if d <= 0 {
		return c.noKey(ctx, noKeys)
	}
	c.t.counters.waits.Add(1)
	if err := c.sleep(ctx, d, wake); err != nil {
		return fail, fmt.Errorf("credpool: waiting for room: %w", err)
	}
	return again, nil
}

// noKey ends a call that found no key and will not wait: with the last
// response if there is one and the caller still wants it, else with noKeys.
func (c *call) noKey(ctx context.Context, noKeys *NoKeysError) (step, error) {
	if c.last != nil && ctx.Err() == nil {
		return handBack, nil
	}
	return fail, noKeys
}

// sleep pauses a request and counts the time it waited.
func (c *call) sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	start := time.Now()
	defer func() {
		slept := time.Since(start)
		c.waited += slept
		c.t.counters.slept(slept)
	}()
	return pause(ctx, d, wake)
}

// waitLeft is what remains of the request's waiting budget, WithMaxWait:
// every pause counts against it, so that a request meeting one cooling key
// after another never waits more than that in all.
func (c *call) waitLeft() time.Duration { return max(c.t.cfg.maxWait-c.waited, 0) }

// waker wakes the requests waiting for a key, or for room under
// WithKeyLimits, whenever one may have come: a cooldown ended early (Reset,
// the store), a place in flight was released, or SetKeys replaced the keys.
// It is one per Transport, shared by every generation of its keys, so a
// request waiting in one generation is woken by a change in the next.
type waker struct {
	waiting atomic.Int32 // requests waiting: a wake with none to wake takes no lock
	mu      sync.Mutex
	woken   chan struct{} // closed (and replaced) on each wake
}

func newWaker() *waker { return &waker{woken: make(chan struct{})} }

// enter counts a waiter in and returns the channel that wakes it. The waiter
// reads the pool's state after enter, so a change it does not see wakes it;
// it calls leave when it stops waiting.
func (w *waker) enter() <-chan struct{} {
	w.waiting.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.woken
}

func (w *waker) leave() { w.waiting.Add(-1) }

// wake wakes every waiter.
func (w *waker) wake() {
	if w.waiting.Load() == 0 {
		return
	}
	w.mu.Lock()
	close(w.woken)
	w.woken = make(chan struct{})
	w.mu.Unlock()
}

// pause waits for d, or until ctx ends or wake (nil for never) is closed. It
// returns the context's error if the context ended first. Every wait in the
// package goes through it, so every wait watches its context.
func pause(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
