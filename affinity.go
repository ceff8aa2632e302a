package credpool

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/http"
	"sync/atomic"
	"time"
)

// Affinity: a request that refers to an object created under one key (a
// stored response by previous_response_id, a file, a batch, a vector store,
// an assistant thread) fails on a key of another account, and replaying it
// on another key is wrong. Pin keeps such a request on one key; Session keeps
// a conversation on one key while that key is usable.

// Pin returns a copy of ctx that pins the requests made with it to the key
// labelled label (as Keys, StateChange and WithKeyHeader report it). A pinned
// request is sent with that key and no other: it may be retried on it after
// the provider's trouble, but a key that is dead or exhausted, or that the
// provider rejects, ends the request (with the provider's answer, or a
// *PinnedKeyError), never moves it to another key.
func Pin(ctx context.Context, label string) context.Context {
	affinityUsed.Store(true)
	return context.WithValue(ctx, pinKey{}, label)
}

// Session returns a copy of ctx whose requests keep to one key for id (a
// conversation or user ID, say): the same id gets the same key while that key
// is usable, and one other usable key when it is not. Sessions spread over
// the keys as evenly as requests do (rendezvous hashing), and a key's death
// moves only its own sessions. Unlike Pin, Session never fails a request that
// another key could serve.
func Session(ctx context.Context, id string) context.Context {
	affinityUsed.Store(true)
	return context.WithValue(ctx, sessionKey{}, maphash.String(sessionSeed, id))
}

// PinnedKeyError is the error of a request pinned with Pin to a key that
// cannot serve it.
type PinnedKeyError struct {
	Label   string    // the label the request was pinned to
	State   State     // the key's state; empty when no key has the label
	Reason  Reason    // why the key left StateOK
	ResetAt time.Time // when an exhausted key returns
}

// Error names the key by its label, never the key, and says why it cannot
// serve.
func (e *PinnedKeyError) Error() string {
	switch e.State {
	case "":
		return fmt.Sprintf("credpool: no key is labelled %q", e.Label)
	case StateExhausted:
		return fmt.Sprintf("credpool: pinned key %s is exhausted (%s) until %s",
			e.Label, e.Reason, e.ResetAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("credpool: pinned key %s is %s (%s)", e.Label, e.State, e.Reason)
}

// WithKeyHeader sets the response header name, on every response, to the
// label of the key that served it (never the key): for logs, and to Pin the
// requests that follow to the same key. "" (the default) sets none.
func WithKeyHeader(name string) Option {
	return optionFunc(func(c *config) { c.keyHeader = http.CanonicalHeaderKey(name) })
}

type (
	pinKey     struct{}
	sessionKey struct{}
)

// affinityUsed is set once Pin or Session was ever called, so that a process
// that uses neither pays one atomic load per request for them, not a walk of
// the request's context.
var affinityUsed atomic.Bool

// sessionSeed hashes session IDs: random per process, so that no one can
// choose IDs that all land on one key.
var sessionSeed = maphash.MakeSeed()

// affinity is a request's Pin or Session. A call holds it by pointer, nil
// for a request with neither, so the success path's call stays small.
type affinity struct {
	pinned  bool   // Pin: one key and no other
	label   string // the label the request was pinned to
	session uint64 // Session: the hash of its ID, when not pinned
}

// readAffinity reads the request's Pin or Session, if it has one.
func (c *call) readAffinity(ctx context.Context) {
	if label, ok := ctx.Value(pinKey{}).(string); ok {
		c.aff = &affinity{pinned: true, label: label}
		return
	}
	if h, ok := ctx.Value(sessionKey{}).(uint64); ok {
		c.aff = &affinity{session: h}
	}
}

// pinned reports whether the request is pinned to one key.
func (c *call) pinned() bool { return c.aff != nil && c.aff.pinned }

// acquire leases the pinned key, or the session's. The label is looked up
// in p at each attempt, since SetKeys may have moved the key.
func (a *affinity) acquire(p *pool, avoid int) (lease, []StateChange, bool) {
	if !a.pinned {
		return p.acquireSession(a.session, avoid, time.Now)
	}
	i, known := p.byLabel[a.label]
	if !known {
		return lease{}, nil, false
	}
	return p.acquireKey(i, time.Now)
}

// key is the index of the key the request keeps to in p: the pinned one, or
// the session's; -1 if no key has the pinned label, or no key is usable.
func (a *affinity) key(p *pool) int {
	if a.pinned {
		if i, known := p.byLabel[a.label]; known {
			return i
		}
		return -1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sessionKey(a.session, -1)
}

// pinFailed ends a pinned request whose key cannot serve it: with the
// provider's last answer if an attempt had one, else a *PinnedKeyError.
func (c *call) pinFailed() (step, error) {
	if c.last != nil {
		return handBack, nil
	}
	e := &PinnedKeyError{Label: c.aff.label}
	if i, known := c.pool.byLabel[c.aff.label]; known {
		s := c.pool.keyStatus(i, time.Now())
		e.State, e.Reason, e.ResetAt = s.State, s.Reason, s.ResetAt
	}
	return fail, e
}

// labelled sets the key header on resp, if WithKeyHeader asked for it.
func (c *call) labelled(resp *http.Response, l lease) {
	if c.t.cfg.keyHeader != "" {
		resp.Header[c.t.cfg.keyHeader] = []string{c.pool.slots[l.index].label}
	}
}
