package credpool

import (
	"sync"
	"sync/atomic"
	"time"
)

// pool is the state machine of the keys. One mutex guards all of it; it is
// held only for in-memory work, never across network I/O and never while a
// callback runs, so callers collect the StateChanges it returns and emit them
// after it is released.
type pool struct {
	strategy      Strategy
	guardCooldown time.Duration // how long the outage guard cools the last key
	maxCooldown   time.Duration // WithMaxCooldown: no cooldown is longer

	mu      sync.Mutex
	slots   []slot
	hot     []hot         // per key, apart from the slots: see hot
	picker  picker        // the usable keys, by strategy; never replaced after newPool
	cooling coolingHeap   // the cooling keys, soonest reset first
	wake    chan struct{} // closed (and replaced) when Reset makes keys usable
	soonest atomic.Int64  // UnixNano of the soonest cooldown's end; 0 when no key cools
	burst   int           // keys killed since the last success
	suspect string        // why the outage guard held back the last kill

	// With a Store: records to write, by fingerprint, and a signal to the
	// writer that there are some.
	byFP    map[string]int
	pending map[string]Record
	kick    chan struct{}

	bursting atomic.Bool // burst > 0, read without the lock on every success
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
	epoch      uint64 // Resets the key has had, here or anywhere sharing the store
	failures   uint64
	strikes    int           // cooldowns in a row whose first attempt after failed again for the same reason
	probing    bool          // back from a cooldown, with no outcome since: the next failure may be a strike
	refreshing chan struct{} // non-nil while a refresh runs; closed when it ends
}

// hot is the part of a key's state that every attempt reads or writes, all
// of it without the lock: which header value to send, and the counts of the
// success path. Each key's hot part has a cache line of its own, so that a
// success touches two lines of the key's memory (this one and its keyID)
// however many keys the pool holds, and the cores counting on one key do not
// evict the rest of its state.
type hot struct {
	id        atomic.Pointer[keyID]
	attempts  atomic.Uint64
	remaining atomic.Int64  // the provider's last remaining-requests count; -1 if never seen
	watched   atomic.Uint32 // 1 while the slot's probing or strikes want a success to clear them
	_         [36]byte
}

// keyID is what an attempt takes from a key: the header value of one
// generation of it. Reset and refresh start a new generation by storing a new
// keyID, never by changing one, so readers need no lock, and an attempt whose
// keyID is no longer the key's was sent before a Reset or refresh: its
// verdict is ignored.
type keyID struct {
	value []string // {header value}: set on every attempt as it is, so the success path allocates nothing for it
	array [1]string
}

// newKeyID returns a generation of a key whose header value is header, in a
// single allocation: value is a slice of array.
func newKeyID(header string) *keyID {
	id := &keyID{array: [1]string{header}}
	id.value = id.array[:]
	return id
}

// renew starts a new generation of key i, with a new header value if header
// is not "". The caller holds the pool's lock.
func (p *pool) renew(i int, header string) {
	if header == "" {
		header = p.hot[i].id.Load().value[0]
	}
	p.hot[i].id.Store(newKeyID(header))
}

// current reports whether l was taken in its key's current generation.
func (p *pool) current(l lease) bool { return p.hot[l.index].id.Load() == l.id }

// lease is one attempt's claim on a key: which slot, and in which generation,
// so the verdict is charged to the key that was actually sent, and not at all
// if the key was reset or refreshed while the attempt was in flight. It is two
// words, so that it travels in registers on the success path.
type lease struct {
	index int
	id    *keyID
}

// value is the header value the attempt sends.
func (l lease) value() []string { return l.id.value }

// suspectMisconfig is what the outage guard says when it holds back a kill.
const suspectMisconfig = "every key rejected: check base URL and auth header"

func newPool(keys []string, cfg *config) *pool {
	p := &pool{
		strategy:      cfg.strategy,
		guardCooldown: cfg.cooldown[ReasonAuth],
		maxCooldown:   cfg.maxCooldown,
		slots:         make([]slot, len(keys)),
		hot:           make([]hot, len(keys)),
		wake:          make(chan struct{}),
	}
	for i, l := range labels(keys) {
		s := &p.slots[i]
		s.label, s.state = l, StateOK
		p.hot[i].id.Store(newKeyID(cfg.prefix + keys[i]))
		p.hot[i].remaining.Store(-1)
	}
	if cfg.store != nil {
		p.byFP, p.pending, p.kick = make(map[string]int, len(keys)), map[string]Record{}, make(chan struct{}, 1)
		for i, k := range keys {
			p.slots[i].fp = Fingerprint(cfg.salt, k)
			p.byFP[p.slots[i].fp] = i
		}
	}
	p.rebuild()
	return p
}

// rebuild puts every usable key in a fresh picker and every cooling key in a
// fresh cooling heap.
func (p *pool) rebuild() {
	p.picker = newPicker(p.strategy, len(p.slots))
	p.cooling = coolingHeap{pos: filled(len(p.slots)), slots: p.slots}
	for i := range p.slots {
		switch p.slots[i].state {
		case StateOK:
			p.picker.add(i)
		case StateExhausted:
			p.cooling.set(i)
		}
	}
	p.publish()
}

// publish makes the pool's changes visible to the lock-free path of
// acquire: the usable keys, and when the soonest cooldown ends. Every method
// that changes a key's state calls it before it releases the lock.
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

// acquire chooses a usable key by the pool's strategy and counts an attempt on
// it. It passes over the key at index avoid (-1 for none) unless no other key
// is usable, so a retry after a server error goes to another key where it
// can. ok is false when no key is usable. Keys whose cooldown ended come back
// into rotation first; revived describes their return.
//
// For every strategy but LeastUsed, a choice while no cooldown has ended
// takes no lock: it reads the published roster.
func (p *pool) acquire(avoid int) (l lease, revived []StateChange, ok bool) {
	if r, ok := p.picker.(*roster); ok {
		if soonest := p.soonest.Load(); soonest == 0 || time.Now().UnixNano() < soonest {
			if i := r.pick(avoid); i >= 0 {
				return p.lease(i), nil, true
			}
		}
	}
	return p.acquireLocked(avoid)
}

// acquireLocked is acquire under the lock: for LeastUsed, and for every
// strategy when a cooldown may have ended or no key was found without it.
func (p *pool) acquireLocked(avoid int) (l lease, revived []StateChange, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cooling.keys) > 0 {
		revived = p.revive(time.Now())
		p.publish()
	}
	i := p.picker.pick(avoid)
	if i < 0 {
		return lease{}, revived, false
	}
	p.picker.used(i)
	return p.lease(i), revived, true
}

// lease counts an attempt on key i and returns the claim on it.
func (p *pool) lease(i int) lease {
	h := &p.hot[i]
	h.attempts.Add(1)
	return lease{index: i, id: h.id.Load()}
}

// revive brings back every key whose cooldown ended by now.
func (p *pool) revive(now time.Time) []StateChange {
	var changes []StateChange
	for i := p.cooling.expired(now); i >= 0; i = p.cooling.expired(now) {
		s := &p.slots[i]
		s.state, s.resetAt, s.probing = StateOK, time.Time{}, true
		p.hot[i].watched.Store(1)
		p.picker.add(i)
		changes = append(changes, StateChange{Index: i, Label: s.label, From: StateExhausted, To: StateOK})
	}
	return changes
}

// fail records a failed attempt. For a verdict that kills or cools the key, it
// applies the new state unless the key was reset or refreshed since the
// attempt was sent, is already dead, or already cools until later (two
// cooldowns merge to the later deadline). A cooldown lasts cooldown, grown
// for a repeat offender (see grown) and clamped to WithMaxCooldown. It
// returns the change when the key's state or reason changed; a cooldown that
// only grows longer is applied silently.
//
// The outage guard: a kill that would leave no key alive, when every other
// key also died since the last success, is more likely a wrong base URL or
// header, or a provider answering 401 to valid keys, than a pool of revoked
// keys. Unless the verdict is final, the last key only cools, and the pool
// reports the suspicion until a success proves the configuration right.
func (p *pool) fail(l lease, v verdict, status int, now time.Time, cooldown time.Duration) (StateChange, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.publish() // before the unlock
	s := &p.slots[l.index]
	s.failures++
	if !p.current(l) || s.state == StateDead {
		return StateChange{}, false
	}
	from := s.state
	if from == StateExhausted && !s.resetAt.After(now) {
		from = StateOK // its cooldown had ended; acquire had not yet noticed
	}
	until := now.Add(p.grown(l.index, v.reason, cooldown))
	var suspect string
	switch {
	case v.reason == ReasonAuthPermanent && !v.final && p.lastAlive(l.index):
		suspect, p.suspect = suspectMisconfig, suspectMisconfig
		p.move(l.index, StateExhausted, now.Add(p.guardCooldown))
	case v.reason == ReasonAuthPermanent:
		p.move(l.index, StateDead, time.Time{})
		p.burst++
		p.bursting.Store(true)
	case from == StateExhausted && !until.After(s.resetAt):
		return StateChange{}, false
	default:
		p.move(l.index, StateExhausted, until)
	}
	quiet := from == s.state && v.reason == s.reason && suspect == ""
	s.reason = v.reason
	p.share(l.index)
	if quiet {
		return StateChange{}, false // a cooldown extended for the same reason is no news
	}
	return StateChange{Index: l.index, Label: s.label, From: from, To: s.state, Reason: v.reason,
		Status: status, ResetAt: s.resetAt, Suspect: suspect}, true
}

// forgive clears key i's strikes and probe, after a success or a Reset, and
// tells the success path it need not look again. The caller holds the lock.
func (p *pool) forgive(i int) {
	s := &p.slots[i]
	s.strikes, s.probing = 0, false
	p.hot[i].watched.Store(0)
}

// minCooldown is how long a key cools when the provider says it may return
// at once: a 429 whose Retry-After is 0 or already past would otherwise leave
// the key in rotation, and the request would send to it again, in a loop.
const minCooldown = time.Second

// grown returns how long key i cools for reason, given the verdict's
// cooldown, and counts a strike when the failure is a repeat: the key's first
// attempt after a cooldown failed again for the reason it cooled for. Each
// strike doubles the cooldown, up to WithMaxCooldown, and a success forgets
// them. Whatever wording the tables miss, a key that never works again is
// then probed a few times a day, not every few minutes: the seed's loop,
// bounded. The caller holds the lock.
func (p *pool) grown(i int, reason Reason, cooldown time.Duration) time.Duration {
	s := &p.slots[i]
	switch {
	case s.probing && reason == s.reason:
		s.strikes++
	case reason != s.reason:
		s.strikes = 0
	}
	if s.probing = false; s.strikes == 0 {
		p.hot[i].watched.Store(0)
	}
	if cooldown <= 0 {
		cooldown = minCooldown
	}
	d := clamp(cooldown, p.maxCooldown)
	for n := 0; n < s.strikes && d < p.maxCooldown; n++ {
		d = min(2*d, p.maxCooldown)
	}
	return d
}

// lastAlive reports whether killing key i would leave no key alive, every
// other key having died since the last success.
func (p *pool) lastAlive(i int) bool {
	if p.burst != len(p.slots)-1 {
		return false
	}
	for j := range p.slots {
		if j != i && p.slots[j].state != StateDead {
			return false
		}
	}
	return true
}

// failTransient records a failed attempt that is not the key's fault.
func (p *pool) failTransient(l lease) {
	p.mu.Lock()
	p.slots[l.index].failures++
	p.mu.Unlock()
}

// succeed records a success. It ends a burst of kills, confirming them, and
// keeps the provider's remaining-requests count. It takes the lock only when
// there is a burst to end: the success path stays lock-free.
func (p *pool) succeed(l lease, remaining int64, known bool) {
	h := &p.hot[l.index]
	if known {
		h.remaining.Store(remaining)
	}
	if p.bursting.Load() || h.watched.Load() != 0 {
		p.mu.Lock()
		p.endBurst()
		p.forgive(l.index)
		p.mu.Unlock()
	}
}

// endBurst forgets the kills since the last success, and the suspicion they
// raised. The caller holds the lock.
func (p *pool) endBurst() {
	p.burst, p.suspect = 0, ""
	p.bursting.Store(false)
}

// cool takes a key out of rotation until its limit resets, on the provider's
// word that it has nothing left (proactive steering). It returns the change,
// if any.
func (p *pool) cool(l lease, until time.Time) (StateChange, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.publish() // before the unlock
	s := &p.slots[l.index]
	if !p.current(l) || s.state != StateOK || !until.After(time.Now()) {
		return StateChange{}, false
	}
	s.reason = ReasonRateLimit
	p.move(l.index, StateExhausted, until)
	p.share(l.index)
	return StateChange{Index: l.index, Label: s.label, From: StateOK, To: StateExhausted, Reason: ReasonRateLimit, ResetAt: until}, true
}

// reset puts the keys at indexes (every key if none is given) back in
// StateOK, makes verdicts on attempts already in flight with them stale, and
// wakes requests waiting for a key.
func (p *pool) reset(indexes ...int) []StateChange {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.publish() // before the unlock
	if len(indexes) == 0 {
		indexes = make([]int, len(p.slots))
		for i := range indexes {
			indexes[i] = i
		}
	}
	var changes []StateChange
	for _, i := range indexes {
		s := &p.slots[i]
		p.renew(i, "")
		s.epoch = min(s.epoch+1, maxEpoch)
		if s.state != StateOK {
			changes = append(changes, StateChange{Index: i, Label: s.label, From: s.state, To: StateOK})
			p.move(i, StateOK, time.Time{})
		}
		s.reason = "" // a reset key has no past to show, nor to pay for
		p.forgive(i)
		p.share(i)
	}
	p.wakeWaiters()
	return changes
}

// wakeWaiters wakes the requests waiting for a key: one may be usable now.
// The caller holds the lock.
func (p *pool) wakeWaiters() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// status returns a snapshot of every key, in the order given to New.
func (p *pool) status() []KeyStatus {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]KeyStatus, len(p.slots))
	for i := range p.slots {
		s := &p.slots[i]
		out[i] = KeyStatus{Label: s.label, State: s.state, Reason: s.reason, ResetAt: s.resetAt,
			Requests: p.hot[i].attempts.Load(), Failures: s.failures, Remaining: p.hot[i].remaining.Load(),
			Strikes: s.strikes}
		if s.state == StateExhausted && !s.resetAt.After(now) {
			out[i].State, out[i].ResetAt = StateOK, time.Time{}
		}
	}
	return out
}

// exhausted describes why no key is usable and returns a channel closed when
// Reset makes keys usable again, so a waiting request can stop waiting.
func (p *pool) exhausted() (*NoKeysError, <-chan struct{}) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &NoKeysError{Suspect: p.suspect}
	for i := range p.slots {
		s := &p.slots[i]
		switch {
		case s.state == StateDead:
			e.Dead++
		case s.state == StateExhausted && s.resetAt.After(now):
			e.Exhausted++
			if e.SoonestReset.IsZero() || s.resetAt.Before(e.SoonestReset) {
				e.SoonestReset = s.resetAt
			}
		default:
			e.OK++
		}
	}
	return e, p.wake
}

// record is key i's shared state.
func (p *pool) record(i int) Record {
	s := &p.slots[i]
	return Record{Fingerprint: s.fp, State: s.state, Reason: s.reason, ResetAt: s.resetAt, Epoch: s.epoch}
}

// share queues key i's state for the store's writer, if there is a store.
// The caller holds the lock.
func (p *pool) share(i int) {
	if p.pending == nil {
		return
	}
	p.pending[p.slots[i].fp] = p.record(i)
	p.poke()
}

// shareAll queues the state of every key that is not plainly ok, or was
// reset, for the writer: after the store comes back, possibly empty.
func (p *pool) shareAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.slots {
		if p.slots[i].state != StateOK || p.slots[i].epoch > 0 {
			p.share(i)
		}
	}
}

// poke wakes the writer, unless it is already due to wake.
func (p *pool) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// takePending hands the queued records to the writer.
func (p *pool) takePending() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Record, 0, len(p.pending))
	for fp, r := range p.pending {
		out = append(out, r)
		delete(p.pending, fp)
	}
	return out
}

// requeue puts back records the writer could not save, merged with any
// change queued since.
func (p *pool) requeue(records []Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range records {
		if newer, ok := p.pending[r.Fingerprint]; ok {
			r = r.Merge(newer)
		}
		p.pending[r.Fingerprint] = r
	}
}

// fingerprints returns the keys' fingerprints in the store, in key order.
func (p *pool) fingerprints() []string {
	out := make([]string, len(p.slots))
	for i := range p.slots {
		out[i] = p.slots[i].fp
	}
	return out
}

// apply merges a record from the store into its key's state. A record of a
// key this pool does not hold is ignored; a cooldown past WithMaxCooldown is
// clamped, as a provider's would be. A key killed elsewhere counts toward
// the outage guard's burst, as a local kill does: only a success ends one.
// A key that becomes usable wakes the requests waiting for one. It returns
// the change, if any.
func (p *pool) apply(r Record, now time.Time) (StateChange, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.publish() // before the unlock
	i, ok := p.byFP[r.Fingerprint]
	if !ok {
		return StateChange{}, false
	}
	if latest := now.Add(p.maxCooldown); r.State == StateExhausted && r.ResetAt.After(latest) {
		r.ResetAt = latest
	}
	s := &p.slots[i]
	local := p.record(i)
	merged := local.Merge(r)
	if merged == local {
		return StateChange{}, false
	}
	if merged.Epoch != s.epoch {
		p.renew(i, "") // reset elsewhere: verdicts on attempts in flight are stale
	}
	from := s.state
	s.epoch, s.reason = merged.Epoch, merged.Reason
	p.move(i, merged.State, merged.ResetAt)
	switch {
	case merged.State == StateDead && from != StateDead:
		p.burst++
		p.bursting.Store(true)
	case merged.State == StateOK && from != StateOK:
		p.wakeWaiters()
	}
	return StateChange{Index: i, Label: s.label, From: from, To: s.state, Reason: s.reason, ResetAt: s.resetAt}, true
}
