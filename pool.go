package credpool

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// pool is the state machine of the keys, split over files by concern:
// leases.go (which key an attempt takes), transitions.go (what an outcome
// does to a key), guard.go (the outage guard) and storequeue.go (what is
// owed to the Store), with the views here.
//
// One mutex, mu, guards the fields under it. It is held only for in-memory
// work, never across network I/O and never while a callback runs: methods
// return the StateChanges they made, and callers emit them after the unlock.
// The atomics are read without the lock, on the success path, and written
// only under it (except each key's own counters in hot). Every method that
// changes a key's state releases the lock with unlock, which publishes the
// change to those lock-free readers first (acquireLocked, on LeastUsed's
// every request, publishes itself, and only when a key came back).
//
// Time is a parameter: every method that needs the time takes now, read
// once by the caller at the edge (as golang.org/x/time/rate does), so the
// pool itself never reads the clock.
type pool struct {
	// Immutable once the pool serves (inherit sets waiters and kick before).
	strategy    Strategy
	cooldown    map[Reason]time.Duration // WithCooldown, by reason
	maxCooldown time.Duration            // WithMaxCooldown: no cooldown is longer
	spec        keySpec                  // the KeyOptions these keys were made with
	byFP        map[string]int           // key index by fingerprint (see SetKeys and the Store)
	byLabel     map[string]int           // key index by label, for Pin
	groups      []int                    // each key's quota group (WithGroups); -1 for none
	limits      []*limiter               // each key's WithKeyLimits; nil for none
	waiters     *waker                   // wakes the requests waiting for a key or for room (see wait.go)
	kick        chan struct{}            // tells the store's writer there are records; nil without a Store
	lockFree    *roster                  // the picker, when a choice may skip the lock (see acquire); nil otherwise

	mu      sync.Mutex
	slots   []slot
	picker  picker            // the usable keys, by strategy; never replaced after newPool
	cooling coolingHeap       // the cooling keys, soonest reset first
	burst   int               // keys killed since the last success: see guard.go
	suspect string            // why the outage guard held back the last kill
	pending map[string]Record // records owed to the store, by fingerprint; nil without a Store
	next    *pool             // the generation that replaced this one (SetKeys); nil while current
	moved   []int             // with next: each key's index in next, -1 if it was removed

	// Written under mu, read without it.
	soonest  atomic.Int64 // UnixNano of the soonest cooldown's end; 0 when no key cools
	bursting atomic.Bool  // burst > 0, read on every success

	// Per key, apart from the slots, each on a cache line of its own: see hot.
	hot []hot
}

// slot is one key's state, apart from its hot part. The key itself lives only
// in the hot part's keyID, as a ready-made header value, which is never
// logged or printed.
type slot struct {
	label      string // redacted
	state      State
	reason     Reason
	resetAt    time.Time
	fp         string // the key's fingerprint in the store
	seat       uint64 // the key's place in rendezvous hashing (see sessionKey): from fp, so it moves with the key
	epoch      uint64 // Resets the key has had, here or anywhere sharing the store
	failures   uint64
	strikes    int           // cooldowns in a row whose first attempt after failed again for the same reason
	probing    bool          // back from a cooldown, with no outcome since: the next failure may be a strike
	refreshing chan struct{} // non-nil while a refresh runs; closed when it ends
}

// stateAt is the key's state at now: a cooldown that has ended counts as ok,
// whether or not the pool has yet moved the key back into rotation.
func (s *slot) stateAt(now time.Time) State {
	if s.state == StateExhausted && !s.resetAt.After(now) {
		return StateOK
	}
	return s.state
}

func newPool(keys []string, cfg *config) *pool {
	p := &pool{
		strategy:    cfg.strategy,
		cooldown:    cfg.cooldown,
		maxCooldown: cfg.maxCooldown,
		slots:       make([]slot, len(keys)),
		hot:         make([]hot, len(keys)),
		byLabel:     make(map[string]int, len(keys)),
		spec:        cfg.keySpec,
		byFP:        make(map[string]int, len(keys)),
		groups:      groupIDs(cfg.groups, len(keys)),
		limits:      newLimiters(cfg.limits, len(keys)),
		waiters:     newWaker(),
	}
	for i, l := range labels(keys) {
		p.byLabel[l] = i
		s := &p.slots[i]
		s.label, s.state = l, StateOK
		p.hot[i].id.Store(newKeyID(cfg.prefix + keys[i]))
		p.hot[i].remaining.Store(-1)
	}
	for i, k := range keys {
		s := &p.slots[i]
		s.fp = Fingerprint(cfg.salt, k)
		s.seat, _ = strconv.ParseUint(s.fp[:16], 16, 64)
		p.byFP[s.fp] = i
	}
	if cfg.store != nil {
		p.pending, p.kick = map[string]Record{}, make(chan struct{}, 1)
	}
	p.picker = newPicker(p.strategy, len(p.slots), cfg.tiers, cfg.weights)
	if r, ok := p.picker.(*roster); ok && p.limits == nil {
		p.lockFree = r
	}
	p.cooling = coolingHeap{pos: filled(len(p.slots)), slots: p.slots}
	for i := range p.slots {
		p.picker.add(i)
	}
	p.publish()
	return p
}

// unlock publishes the pool's changes to the lock-free path of acquire, and
// then releases the lock: every method that changes a key's state ends with
// it (deferred), so a reader without the lock never sees a state the lock
// has already moved past.
func (p *pool) unlock() {
	p.publish()
	p.mu.Unlock()
}

// publish makes the usable keys, and when the soonest cooldown ends, visible
// to acquire's lock-free path. The caller holds the lock.
func (p *pool) publish() {
	if r, ok := p.picker.(*roster); ok {
		r.publish()
	}
	var soonest int64
	if len(p.cooling.keys) > 0 {
		soonest = p.slots[p.cooling.keys[0]].resetAt.UnixNano()
	}
	p.soonest.Store(soonest)
}

// move puts key i in state, keeping the picker and the cooling heap in step.
// The caller holds the lock.
func (p *pool) move(i int, state State, resetAt time.Time) {
	s := &p.slots[i]
	switch s.state {
	case StateOK:
		p.picker.remove(i)
	case StateExhausted:
		p.cooling.remove(i)
	}
	s.state, s.resetAt = state, resetAt
	switch state {
	case StateOK:
		p.picker.add(i)
	case StateExhausted:
		p.cooling.set(i)
	}
}

// change describes key i's move from state from to where it is now. The
// caller holds the lock.
func (p *pool) change(i int, from State, status int, suspect string) StateChange {
	s := &p.slots[i]
	return StateChange{Index: i, Label: s.label, From: from, To: s.state, Reason: s.reason,
		Status: status, ResetAt: s.resetAt, Suspect: suspect}
}

// status returns a snapshot of every key at now, in the order given to New.
func (p *pool) status(now time.Time) []KeyStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]KeyStatus, len(p.slots))
	for i := range p.slots {
		out[i] = p.statusOf(i, now)
	}
	return out
}

// keyStatus returns a snapshot of key i at now.
func (p *pool) keyStatus(i int, now time.Time) KeyStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.statusOf(i, now)
}

// statusOf is key i's snapshot at now. The caller holds the lock.
func (p *pool) statusOf(i int, now time.Time) KeyStatus {
	s := &p.slots[i]
	k := KeyStatus{Label: s.label, State: s.stateAt(now), Reason: s.reason,
		Requests: p.hot[i].attempts.Load(), Failures: s.failures, Remaining: p.hot[i].remaining.Load(),
		Strikes: s.strikes}
	if k.State == StateExhausted {
		k.ResetAt = s.resetAt
	}
	return k
}

// exhausted counts the keys per state at now, to say why no key is usable.
// With only >= 0, it counts that key alone: a pinned request's, or a
// session's.
func (p *pool) exhausted(now time.Time, only int) *NoKeysError {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &NoKeysError{Suspect: p.suspect}
	for i := range p.slots {
		if only >= 0 && i != only {
			continue
		}
		s := &p.slots[i]
		switch s.stateAt(now) {
		case StateDead:
			e.Dead++
		case StateDisabled:
			e.Disabled++
		case StateExhausted:
			e.Exhausted++
			if e.SoonestReset.IsZero() || s.resetAt.Before(e.SoonestReset) {
				e.SoonestReset = s.resetAt
			}
		default:
			e.OK++
			p.full(i, now, e)
		}
	}
	return e
}

// full counts key i in e.AtLimit if it is usable but at its limit at now,
// and keeps the soonest time its rate makes room. The caller holds the lock.
func (p *pool) full(i int, now time.Time, e *NoKeysError) {
	if p.limits == nil {
		return
	}
	at, full := p.limits[i].roomAt(now)
	if !full {
		return
	}
	e.AtLimit++
	if !at.IsZero() && (e.roomAt.IsZero() || at.Before(e.roomAt)) {
		e.roomAt = at
	}
}

// wakeWaiters wakes the requests waiting for a key: one may be usable now.
func (p *pool) wakeWaiters() { p.waiters.wake() }
