package credpool

import (
	"sync/atomic"
	"time"
)

// Stats are a Transport's cumulative counts since New, for metrics and
// reports. The success path pays one atomic add per attempt, on a cache line
// of the key's own (see hot); everything else is counted on the failure
// paths.
type Stats struct {
	Attempts  uint64            // attempts sent, over all keys
	Failures  map[Reason]uint64 // failed attempts, by reason
	Rotations uint64            // times a request moved at once to another key
	Retries   uint64            // retries after a backoff
	Waits     uint64            // waits for a cooling key to return
	Waited    time.Duration     // time spent in backoffs and waits
	Rechecks  uint64            // re-checks of dead keys sent (WithRecheck)
	Revived   uint64            // dead keys a re-check put back in rotation
}

// counters is the live form of Stats.
type counters struct {
	failures  [len(reasonIndex)]atomic.Uint64
	rotations atomic.Uint64
	retries   atomic.Uint64
	waits     atomic.Uint64
	waited    atomic.Int64
	rechecks  atomic.Uint64
	revived   atomic.Uint64
}

// reasonIndex numbers the reasons for the failures array.
var reasonIndex = [...]Reason{
	ReasonAuthPermanent, ReasonAuth, ReasonBilling, ReasonRateLimit,
	ReasonOverloaded, ReasonServerError, ReasonTransport, ReasonClientError,
}

// reasonSlot is r's place in reasonIndex, or -1 for a reason it does not know.
func reasonSlot(r Reason) int {
	for i, known := range reasonIndex {
		if known == r {
			return i
		}
	}
	return -1
}

func (c *counters) failed(r Reason) {
	if i := reasonSlot(r); i >= 0 {
		c.failures[i].Add(1)
	}
}

func (c *counters) slept(d time.Duration) { c.waited.Add(int64(d)) }

// Stats returns the Transport's counts since New.
func (t *Transport) Stats() Stats {
	if t.pool() == nil {
		return Stats{}
	}
	s := Stats{
		Failures:  make(map[Reason]uint64, len(reasonIndex)),
		Rotations: t.counters.rotations.Load(),
		Retries:   t.counters.retries.Load(),
		Waits:     t.counters.waits.Load(),
		Waited:    time.Duration(t.counters.waited.Load()),
		Rechecks:  t.counters.rechecks.Load(),
		Revived:   t.counters.revived.Load(),
	}
	for i, r := range reasonIndex {
		if n := t.counters.failures[i].Load(); n > 0 {
			s.Failures[r] = n
		}
	}
	s.Attempts = t.ring.dropped.Load() // of the keys SetKeys removed
	p := t.pool()
	for i := range p.hot {
		s.Attempts += p.hot[i].attempts.Load()
	}
	return s
}
