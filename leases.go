package credpool

import (
	"math"
	"sync/atomic"
	"time"
)

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

// renew starts a new generation of key i, with a new header value if header
// is not "". The caller holds the lock.
func (p *pool) renew(i int, header string) {
	if header == "" {
		header = p.hot[i].id.Load().value[0]
	}
	p.hot[i].id.Store(newKeyID(header))
}

// current reports whether l was taken in its key's current generation.
func (p *pool) current(l lease) bool { return p.hot[l.index].id.Load() == l.id }

// acquire chooses a usable key by the pool's strategy and counts an attempt
// on it. It passes over the key at index avoid (-1 for none) unless no other
// key is usable, so a retry after a server error goes to another key where it
// can. ok is false when no key is usable. Keys whose cooldown ended come back
// into rotation first; revived describes their return. It asks now for the
// time only when some key cools, so a healthy pool's success path reads no
// clock.
//
// For every strategy but LeastUsed, and without WithKeyLimits, a choice while
// no cooldown has ended takes no lock: it reads the published roster.
func (p *pool) acquire(avoid int, now func() time.Time) (l lease, revived []StateChange, ok bool) {
	if r := p.lockFree; r != nil {
		if soonest := p.soonest.Load(); soonest == 0 || now().UnixNano() < soonest {
			if i := r.pick(avoid); i >= 0 {
				return p.lease(i), nil, true
			}
		}
	}
	if p.limits == nil {
		return p.acquireLocked(now, func() int { return p.picker.pick(avoid) })
	}
	return p.acquireLocked(now, func() int { return p.pickWithRoom(avoid, now) })
}

// acquireKey leases key i and no other, if it is usable: for a pinned
// request.
func (p *pool) acquireKey(i int, now func() time.Time) (l lease, revived []StateChange, ok bool) {
	return p.acquireLocked(now, func() int {
		if p.slots[i].state != StateOK || !p.admit(i, now) {
			return -1
		}
		return i
	})
}

// acquireSession leases the key of session h: see sessionKey.
func (p *pool) acquireSession(h uint64, avoid int, now func() time.Time) (l lease, revived []StateChange, ok bool) {
	return p.acquireLocked(now, func() int {
		if i := p.sessionKey(h, avoid); i >= 0 && p.admit(i, now) {
			return i
		}
		return -1
	})
}

// admit takes a place for an attempt with key i under its WithKeyLimits, if
// it has room; it reads the clock only for a rate. The caller holds the
// lock.
func (p *pool) admit(i int, now func() time.Time) bool {
	if p.limits == nil {
		return true
	}
	l := p.limits[i]
	var at time.Time
	if l.rate != nil {
		at = now()
	}
	return l.admit(at)
}

// pickWithRoom is the strategy's choice, and under WithKeyLimits, the first
// usable key with room when that one is full: the lowest tiers first, and
// within a tier, in the picker's order, so that a full lower tier spills to
// the next. -1 if no usable key has room. The caller holds the lock.
func (p *pool) pickWithRoom(avoid int, now func() time.Time) int {
	first := p.picker.pick(avoid)
	if first < 0 || p.admit(first, now) {
		return first
	}
	found := -1
	p.picker.each(func(i int) bool {
		if i != first && i != avoid && p.admit(i, now) {
			found = i
			return false
		}
		return true
	})
	if found < 0 && avoid >= 0 && avoid != first && p.slots[avoid].state == StateOK && p.admit(avoid, now) {
		found = avoid
	}
	return found
}

// acquireLocked is every acquire under the lock: acquire's for LeastUsed, and
// for every strategy when a cooldown may have ended or no key was found
// without it; acquireKey's and acquireSession's always. It brings back the
// keys whose cooldown ended, reading the clock only when some key cools and
// publishing only when one came back, then leases the key choose names (-1
// for none).
func (p *pool) acquireLocked(now func() time.Time, choose func() int) (l lease, revived []StateChange, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cooling.keys) > 0 {
		if revived = p.revive(now()); revived != nil {
			p.publish() // before choose, which may read the published roster
		}
	}
	i := choose()
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

// sessionKey is the usable key of the lowest tier that session h ranks first
// (rendezvous hashing: each key's score is a hash of the session and the
// key's seat, which SetKeys does not change), passing over avoid unless it is
// the only one; -1 if no key is usable. A session keeps its key while the key
// is usable, and a key's loss moves only the sessions that ranked it first.
// The caller holds the lock.
func (p *pool) sessionKey(h uint64, avoid int) int {
	tiers := p.spec.tiers
	lowest := 0
	if tiers != nil {
		lowest = math.MaxInt
		for i := range p.slots {
			if p.slots[i].state == StateOK {
				lowest = min(lowest, tiers[i])
			}
		}
	}
	best, second := -1, -1
	var bestScore, secondScore uint64
	for i := range p.slots {
		if p.slots[i].state != StateOK || tiers != nil && tiers[i] != lowest {
			continue
		}
		score := mix(h ^ p.slots[i].seat)
		switch {
		case best < 0 || score > bestScore:
			second, secondScore = best, bestScore
			best, bestScore = i, score
		case second < 0 || score > secondScore:
			second, secondScore = i, score
		}
	}
	if best == avoid && second >= 0 {
		return second
	}
	return best
}

// mix is a 64-bit finalizer (splitmix64's): it spreads the session's hash
// and a key's index into a score in which every bit counts.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
