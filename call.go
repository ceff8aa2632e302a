package credpool

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-retryablehttp"
)

// call is the state of one RoundTrip: its attempts, its backoff and the last
// upstream response, kept to hand back if no attempt succeeds. It lives on the
// RoundTrip's stack and is never shared, so it needs no lock.
type call struct {
	t         *Transport
	pool      *pool // the generation of keys of the latest attempt (see SetKeys)
	req       *http.Request
	body      replay
	attempts  int             // attempts sent
	transient int             // attempts that failed for the provider's trouble
	backoff   backoff.BackOff // made at the first transient failure
	avoid     int             // key of the last transient failure, -1 for none
	last      *http.Response  // latest error response not yet handed back
	inBase    lease           // the attempt the base transport is sending, if any: see finish
	refreshed []int           // keys this request refreshed, once each
	echo      *echo           // the caller's own words, read when a verdict would rest on words
	waited    time.Duration   // time paused so far, against WithMaxWait
	waits     int             // looks for a key again without a wait: see waitForKey
	worded    bool            // a key already paid for words in this request: see penalize
	aff       *affinity       // the request's Pin or Session; nil for neither
}

// step is what a call does after an attempt that did not succeed.
type step int

const (
	again    step = iota // send another attempt
	handBack             // return the provider's last response, or ErrNoKeys if there was none
	fail                 // return the error that came with the step
)

// run sends attempts until one succeeds or gives a response to hand back, or
// until the budget runs out: WithMaxRetries retries after transient failures,
// and never more than keys + WithMaxRetries + 1 attempts in all, so no loop is
// possible.
//
// The loop is the success path of every request, written out in one piece:
// a key, a copy of the request with it, and the base's answer. Everything else
// an attempt can meet is outcome's.
func (c *call) run() (*http.Response, error) {
	limit := len(c.pool.slots) + c.t.cfg.maxRetries + 1
	for ; c.attempts < limit && c.waits <= limit; c.followKeys() {
		var l lease
		var revived []StateChange
		var ok bool
		if c.aff == nil {
			l, revived, ok = c.pool.acquire(c.avoid, time.Now)
		} else {
			l, revived, ok = c.aff.acquire(c.pool, c.avoid) // Pin or Session: see affinity.go
		}
		for _, change := range revived {
			c.t.emit(c.req.Context(), change)
		}
		if !ok {
			if next, err := c.waitForKey(c.req.Context()); next != again {
				return c.end(next, err)
			}
			continue
		}

		// The attempt: the request struct and its header map are copied,
		// and the header values shared, since nothing on the way to the wire
		// modifies them. maps.Clone copies the map's table as it is, without
		// hashing every name again as a copy loop does.
		out := new(http.Request)
		*out = *c.req
		if out.Header = maps.Clone(c.req.Header); out.Header == nil {
			out.Header = make(http.Header, 1)
		}
		if c.t.cfg.drop != "" {
			delete(out.Header, c.t.cfg.drop)
		}
		out.Header[c.t.cfg.header] = l.value()
		if err := c.body.body(out); err != nil {
			c.dropLast()
			c.released(l)
			return nil, err
		}
		c.attempts++
		c.inBase = l // a panic in the base is finish's to handle
		resp, err := heldToContract(c.t.cfg.base.RoundTrip(out))
		c.inBase.id = nil

		if err == nil && resp.StatusCode < http.StatusBadRequest {
			c.dropLast()
			c.succeed(l, resp.Header)
			c.labelled(resp, l)
			if c.pool.limits != nil {
				c.pool.hold(resp, l.index) // a stream holds its place until it is closed
			}
			return resp, nil
		}
		c.released(l)
		if next, err := c.outcome(l, resp, err); next != again {
			return c.end(next, err)
		}
	}
	return c.handBack()
}

// released gives back the place in flight that the attempt l held under
// WithKeyLimits, once credpool is done with its answer.
func (c *call) released(l lease) {
	if c.pool.limits != nil {
		c.pool.release(l.index)
	}
}

// followKeys moves the call to the current generation of keys before it
// looks for a key again, should SetKeys have replaced them: the first look
// uses the one RoundTrip read.
func (c *call) followKeys() {
	if p := c.t.pool(); p != c.pool {
		c.pool, c.avoid = p, -1
	}
}

// end ends the call with next, handBack or fail.
func (c *call) end(next step, err error) (*http.Response, error) {
	if next == handBack {
		return c.handBack()
	}
	c.dropLast()
	return nil, err
}

// heldToContract holds the base to the RoundTripper contract, whatever it
// did: a response with a body, or an error, never both or neither.
func heldToContract(resp *http.Response, err error) (*http.Response, error) {
	switch {
	case err != nil && resp != nil:
		discard(resp)
		return nil, err
	case err == nil && resp == nil:
		return nil, &baseFault{"base RoundTripper returned neither a response nor an error"}
	case err == nil && resp.Body == nil:
		resp.Body = http.NoBody
	}
	return resp, err
}

// outcome acts on an attempt that failed, with an error or an error
// response, and says what the call does next.
func (c *call) outcome(l lease, resp *http.Response, err error) (step, error) {
	if err != nil {
		return c.onError(c.req.Context(), l, err)
	}
	return c.onErrorResponse(c.req.Context(), l, resp)
}

// finish ends every call, deferred by RoundTrip: it closes the caller's body
// if no attempt took it, and turns a panic in the base transport into the
// call's error, blaming no key, as heldToContract does with the base's other
// faults. (A defer around each attempt would cost every request.) A panic
// anywhere else is credpool's or a callback's, and goes on up.
func (c *call) finish(resp **http.Response, err *error) {
	c.body.release()
	if c.inBase.id == nil {
		return
	}
	l := c.inBase
	c.inBase.id = nil
	c.released(l)
	p := recover()
	if p == nil {
		return // runtime.Goexit in the base: nothing to answer
	}
	c.t.counters.failed(ReasonTransport)
	c.dropLast()
	*resp, *err = nil, c.t.attemptError(c.pool, l, &baseFault{fmt.Sprintf("base RoundTripper panicked: %v", p)})
}

// baseFault is a broken base transport's doing. It is never retried.
type baseFault struct{ msg string }

func (e *baseFault) Error() string { return e.msg }

// onError handles an attempt that got no response. A network error worth
// retrying (by go-retryablehttp's policy) is retried after a backoff without
// blaming the key. When the retry budget runs out, the provider's last
// response, if an earlier attempt had one, says more than a network error,
// and is handed back. Anything else fails the call: a broken base, an error
// no retry can fix, and the context's end, which the error then wraps too.
func (c *call) onError(ctx context.Context, l lease, err error) (step, error) {
	c.t.counters.failed(ReasonTransport)
	if ctx.Err() != nil {
		if !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return fail, c.t.attemptError(c.pool, l, err)
	}
	var fault *baseFault
	worth := false
	if !errors.As(err, &fault) {
		worth, _ = retryablehttp.DefaultRetryPolicy(ctx, nil, &url.Error{Op: c.req.Method, URL: c.req.URL.Redacted(), Err: err})
	}
	if worth && !c.body.canReplay() {
		if c.body.skipped != "" {
			err = fmt.Errorf("%w (not retried: %s)", err, c.body.skipped)
		}
		worth = false
	}
	if !worth {
		return fail, c.t.attemptError(c.pool, l, err)
	}
	c.pool.failTransient(l)
	c.avoid = l.index
	next, werr := c.backOff(ctx, 0)
	if next == handBack && c.last == nil {
		return fail, c.t.attemptError(c.pool, l, err) // nothing to hand back: the network error says most
	}
	return next, werr
}

// attemptError names the key of a failed attempt by its label, and scrubs the
// key from the error, at every level of its chain, should a base transport
// have put it there (see scrub.go).
func (t *Transport) attemptError(p *pool, l lease, err error) error {
	label := p.slots[l.index].label
	err = scrub(err, scrubber(label, l.value()[0][len(t.cfg.prefix):]))
	return &attemptError{msg: "credpool: key " + label + ": " + err.Error(), err: err}
}

// attemptError is an attempt's error, with a text that is safe to log.
type attemptError struct {
	msg string
	err error
}

func (e *attemptError) Error() string { return e.msg }
func (e *attemptError) Unwrap() error { return e.err }

// onErrorResponse classifies an error response and acts on it: a dead or
// cooling key is taken out of rotation and the request moves on at once; the
// provider's trouble gets a backoff; a client error is handed back. The
// response is kept as c.last until a newer outcome replaces it.
func (c *call) onErrorResponse(ctx context.Context, l lease, resp *http.Response) (step, error) {
	cfg := c.t.cfg
	body := peekBody(resp, cfg.maxErrorBody, cfg.errorBodyWait)
	now := time.Now()
	if c.echo == nil {
		c.echo = newEcho(c)
	}
	v := cfg.classifier.classify(resp.StatusCode, resp.Header, decoded(resp, body, cfg.maxErrorBody), now, c.echo.echoed)
	c.t.counters.failed(v.reason)
	c.dropLast()
	c.last = resp
	c.labelled(resp, l)
	switch v.reason {
	case ReasonAuthPermanent, ReasonAuth, ReasonBilling, ReasonRateLimit:
		if v.prose && c.worded {
			// Words alone have cost this request a key already: this one
			// pays nothing, and its answer goes back. Moving on would send
			// the request again to keys that may be revoked, some of which
			// (GitHub's) lock out valid credentials after a few such tries.
			return handBack, nil
		}
		c.worded = c.worded || v.prose
		if !c.body.canReplay() {
			c.penalize(ctx, l, v, resp.StatusCode, now)
			c.notReplayed(resp)
			return handBack, nil
		}
		retry, err := c.refresh(l, v)
		if err != nil {
			return fail, err
		}
		if !retry {
			c.penalize(ctx, l, v, resp.StatusCode, now)
			if c.pinned() {
				return handBack, nil // a pinned request is never moved to another key
			}
			c.t.counters.rotations.Add(1)
		}
		return again, nil
	case ReasonOverloaded, ReasonServerError:
		c.pool.failTransient(l)
		c.avoid = l.index
		if !c.body.canReplay() {
			c.notReplayed(resp)
			return handBack, nil
		}
		return c.backOff(ctx, v.hint)
	}
	return handBack, nil
}

// penalize reports a verdict against a key to the pool, which decides what
// it does to the key (see pool.fail), and emits the change.
//
// Whatever a request carries, a verdict that rests on a message's words alone
// (v.prose) takes at most one key out of rotation per request: the next one
// hands the response back instead (see onErrorResponse). Codes are the
// provider's own, and an invalid_api_key on every key still kills every key.
func (c *call) penalize(ctx context.Context, l lease, v verdict, status int, now time.Time) {
	for _, change := range c.pool.fail(l, v, status, now) {
		c.t.emit(ctx, change)
	}
}

// succeed records a success with the leased key, and cools the key if the
// provider says it has nothing left until its window resets.
func (c *call) succeed(l lease, h http.Header) {
	steer := &c.t.cfg.steering
	remaining, known := steer.remaining(h)
	c.pool.succeed(l, remaining, known)
	if known && steer.spent(h, remaining) {
		c.coolSpent(l, h)
	}
}

// coolSpent cools a key whose window the provider says is spent, until the
// window resets. It is apart from succeed, which runs on every success, so
// that succeed stays small: its frame is set up on every request.
func (c *call) coolSpent(l lease, h http.Header) {
	now := time.Now()
	if d, ok := limitReset(h, now); ok {
		if change, ok := c.pool.cool(l, now.Add(clamp(d, c.pool.maxCooldown)), now); ok {
			c.t.emit(c.req.Context(), change)
		}
	}
}

// handBack returns the last upstream response to the caller, or ErrNoKeys if
// there was none.
func (c *call) handBack() (*http.Response, error) {
	if resp := c.last; resp != nil {
		c.last = nil
		return resp, nil
	}
	noKeys := c.pool.exhausted(time.Now(), -1)
	return nil, noKeys
}

// dropLast closes the kept response when a newer outcome replaces it.
func (c *call) dropLast() {
	discard(c.last)
	c.last = nil
}
