package credpool

import (
	"io"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Per-key limits: a key has provider limits of its own, and reaching them
// costs a 429 and a cooldown. With WithKeyLimits, credpool keeps each key
// under a cap of requests in flight and a requests-per-minute budget, and
// spreads the load over the keys with room, or waits for room, before the
// provider has to say no.

// KeyLimit is one key's own budget, as its provider sets it.
type KeyLimit struct {
	// InFlight is the most requests in flight with the key at once; 0 for
	// no cap. A request holds its place from the attempt until its
	// response body is closed, so a stream holds it while it streams.
	InFlight int
	// PerMinute is the most requests the key sends per minute, spread
	// evenly: a token bucket (golang.org/x/time/rate) that refills at
	// PerMinute/60 per second and holds a second's worth, at least one.
	// 0 for no limit.
	PerMinute float64
}

// WithKeyLimits keeps each key under its limit: one KeyLimit for every key,
// or one per key, in the order of the keys; none removes the limits (for
// SetKeys). A request goes to a key with room, by the pool's strategy and
// tiers (a higher tier takes the overflow of a full lower one); when every
// usable key is full, it waits for room within WithMaxWait and its context,
// and then fails with a *NoKeysError that counts the full keys (AtLimit).
//
// The limits are local to the Transport: with a Store, states are shared
// but each replica counts its own requests, so give each replica its share
// of a key's limit.
func WithKeyLimits(limits ...KeyLimit) KeyOption {
	return keyOptionFunc(func(c *config) {
		for i, l := range limits {
			if l.InFlight < 0 || l.InFlight > math.MaxInt32 || !(l.PerMinute >= 0) || math.IsInf(l.PerMinute, 0) {
				c.invalid("WithKeyLimits: limit %d is not a count and a rate of 0 or more", i)
				return
			}
		}
		c.limits = append([]KeyLimit(nil), limits...)
	})
}

// limiter is one key's KeyLimit at work. It outlives a generation of keys:
// SetKeys hands a key that stays the same limiter, so that the attempts in
// flight in the old generation still count, and release, where they are.
type limiter struct {
	limit    KeyLimit
	inFlight atomic.Int32
	rate     *rate.Limiter // nil for no PerMinute
}

func newLimiter(l KeyLimit) *limiter {
	lim := &limiter{limit: l}
	if l.PerMinute > 0 {
		perSecond := l.PerMinute / 60
		lim.rate = rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)))
	}
	return lim
}

// newLimiters returns the limiters of n keys; nil without limits.
func newLimiters(limits []KeyLimit, n int) []*limiter {
	if limits == nil {
		return nil
	}
	out := make([]*limiter, n)
	for i := range out {
		if len(limits) == 1 {
			out[i] = newLimiter(limits[0])
		} else {
			out[i] = newLimiter(limits[i])
		}
	}
	return out
}

// admit takes a place for one attempt at now, if the key has room.
func (l *limiter) admit(now time.Time) bool {
	if l.limit.InFlight > 0 && l.inFlight.Add(1) > int32(l.limit.InFlight) {
		l.inFlight.Add(-1)
		return false
	}
	if l.rate != nil && !l.rate.AllowN(now, 1) {
		if l.limit.InFlight > 0 {
			l.inFlight.Add(-1)
		}
		return false
	}
	return true
}

// roomAt says whether the key is full at now, and if its rate is what fills
// it, when it has room again; the zero time when only a release can make
// room.
func (l *limiter) roomAt(now time.Time) (at time.Time, full bool) {
	if l.limit.InFlight > 0 && l.inFlight.Load() >= int32(l.limit.InFlight) {
		return time.Time{}, true
	}
	if l.rate == nil {
		return time.Time{}, false
	}
	if tokens := l.rate.TokensAt(now); tokens < 1 {
		return now.Add(time.Duration((1 - tokens) / float64(l.rate.Limit()) * float64(time.Second))), true
	}
	return time.Time{}, false
}

// release gives back key i's place in flight, and wakes the requests waiting
// for room, if any.
func (p *pool) release(i int) {
	if l := p.limits[i]; l.limit.InFlight > 0 {
		l.inFlight.Add(-1)
		p.waiters.wake()
	}
}

// heldBody is the body of a response that holds its key's place in flight
// until it is closed, or read to its end.
type heldBody struct {
	io.ReadCloser
	pool     *pool
	index    int
	released atomic.Bool
}

func (b *heldBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.release()
	}
	return n, err
}

func (b *heldBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

// release gives the place back, once.
func (b *heldBody) release() {
	if b.released.CompareAndSwap(false, true) {
		b.pool.release(b.index)
	}
}

// heldWriteBody is a heldBody whose body is also an io.Writer: a 101
// Switching Protocols connection, which a reverse proxy writes to.
type heldWriteBody struct {
	*heldBody
	w io.Writer
}

func (b heldWriteBody) Write(p []byte) (int, error) { return b.w.Write(p) }

// hold makes resp's body hold key i's place in flight until it is closed.
func (p *pool) hold(resp *http.Response, i int) {
	if p.limits[i].limit.InFlight == 0 {
		return
	}
	b := &heldBody{ReadCloser: resp.Body, pool: p, index: i}
	if w, ok := resp.Body.(io.Writer); ok {
		resp.Body = heldWriteBody{heldBody: b, w: w}
		return
	}
	resp.Body = b
}
