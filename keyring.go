package credpool

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Live key sets: services rotate secrets without restarting. SetKeys builds
// the next generation of the pool beside the running one, carries over the
// state of every key that stays, and swaps it in with one atomic store: a
// request sees the old keys or the new ones, never a moment with none. The
// generation it replaced is retired, not torn down: its attempts in flight
// finish, and what they learn of a key that stayed is handed on (see
// lockFor).

// keyring holds the pool's current generation of keys.
type keyring struct {
	mu      sync.Mutex // held for a swap and for what manage.go does; never by a request, nor across I/O or a callback
	current atomic.Pointer[pool]
	dropped atomic.Uint64 // attempts sent with keys that SetKeys removed, for Stats
}

func newKeyring(p *pool) *keyring {
	r := new(keyring)
	r.current.Store(p)
	return r
}

// pool returns the current generation of keys; nil for a Transport that New
// did not make.
func (t *Transport) pool() *pool {
	if t.ring == nil {
		return nil
	}
	return t.ring.current.Load()
}

// SetKeys replaces the pool's keys with keys, at once, for requests in
// flight too, and without a moment with none. A key that stays keeps its
// state: a dead key stays dead, a cooling key cools until its time, a
// disabled key stays disabled, and its counts go on. A new key starts in
// rotation, unless the Store knows it otherwise (its stored state is loaded
// first, within WithStoreLoadTimeout). A removed key's attempts in flight
// finish; their retries, and every request from then on, use the new keys.
// Indexes and labels (Keys, StateChange, ResetKey) follow the new order.
//
// keys are checked as New checks them. opts describe the new keys as they
// describe New's (WithGroups, WithTiers, WithWeights, WithKeyLimits); a
// KeyOption not given keeps its last value, which must then still fit the
// new keys. On any error nothing changes. The keys added and removed are
// logged, by label, at Info.
func (t *Transport) SetKeys(keys []string, opts ...KeyOption) error {
	if t.pool() == nil {
		return errNotNew
	}
	if err := validateKeys(keys); err != nil {
		return err
	}
	added, removed, err := t.swapKeys(keys, opts)
	if err != nil {
		return err
	}
	t.cfg.logger.LogAttrs(context.Background(), slog.LevelInfo, "credpool: keys replaced",
		slog.Int("keys", len(keys)), slog.Any("added", added), slog.Any("removed", removed))
	return nil
}

// swapKeys makes the next generation of keys current and returns the labels
// of the keys it added and removed. It builds the generation, and loads its
// new keys' stored states, without a lock; it takes the keyring's lock only
// to swap, and starts over if another SetKeys swapped first.
func (t *Transport) swapKeys(keys []string, opts []KeyOption) (added, removed []string, err error) {
	for {
		old := t.pool()
		next, err := t.nextPool(old, keys, opts)
		if err != nil {
			return nil, nil, err
		}
		if t.sync != nil {
			t.sync.preload(next, old)
		}
		t.ring.mu.Lock()
		if t.pool() != old {
			t.ring.mu.Unlock()
			continue
		}
		added, removed, dropped := next.inherit(old)
		t.ring.dropped.Add(dropped)
		t.ring.current.Store(next)
		if t.sync != nil {
			t.sync.rekey(next)
		}
		t.ring.mu.Unlock()
		return added, removed, nil
	}
}

// nextPool builds the generation of keys that follows old: keys, with the
// KeyOptions of old but those opts give anew.
func (t *Transport) nextPool(old *pool, keys []string, opts []KeyOption) (*pool, error) {
	cfg := *t.cfg
	cfg.keySpec, cfg.err = old.spec, nil
	for _, opt := range opts {
		if opt == nil {
			cfg.invalid("nil KeyOption")
			continue
		}
		opt.apply(&cfg)
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	if err := cfg.checkPerKey(len(keys)); err != nil {
		return nil, fmt.Errorf("%w (SetKeys keeps a KeyOption it is not given)", err)
	}
	return newPool(keys, &cfg), nil
}

// inherit carries over from old, the generation p replaces, the state of
// every key that stays, and retires old: from then on, old hands on what
// its attempts in flight learn of those keys (see lockFor), and its waiting
// requests wake to find p. It returns the labels of the keys added and
// removed, and the attempts sent with the removed ones.
func (p *pool) inherit(old *pool) (added, removed []string, dropped uint64) {
	old.mu.Lock()
	defer old.mu.Unlock()
	p.mu.Lock()
	defer p.unlock()
	p.waiters = old.waiters // a request waiting in old is woken by a change in p
	if p.pending != nil {
		p.kick = old.kick // the store's writer listens on it
	}
	moved := make([]int, len(old.slots))
	for i := range old.slots {
		j, kept := p.byFP[old.slots[i].fp]
		if !kept {
			moved[i] = -1
			removed = append(removed, old.slots[i].label)
			dropped += old.hot[i].attempts.Load()
			continue
		}
		moved[i] = j
		p.take(j, old, i)
	}
	for j := range p.slots {
		if _, kept := old.byFP[p.slots[j].fp]; !kept {
			added = append(added, p.slots[j].label)
		}
	}
	p.burst, p.suspect = old.burst, old.suspect
	p.bursting.Store(p.burst > 0)
	for fp, r := range old.pending { // a removed key's last state is still owed to the other replicas
		if _, owed := p.pending[fp]; !owed {
			p.pending[fp] = r
			p.poke()
		}
	}
	old.next, old.moved = p, moved
	old.wakeWaiters()
	return added, removed, dropped
}

// take gives key j the state of key i of old, the same key: its state, past
// and counts, and its current generation (keyID), so that an attempt in
// flight with it is still the key's own. Both locks are held.
func (p *pool) take(j int, old *pool, i int) {
	s, o := &p.slots[j], &old.slots[i]
	s.reason, s.epoch, s.failures, s.strikes, s.probing = o.reason, o.epoch, o.failures, o.strikes, o.probing
	p.move(j, o.state, o.resetAt)
	h, oh := &p.hot[j], &old.hot[i]
	h.id.Store(oh.id.Load())
	h.attempts.Store(oh.attempts.Load())
	h.remaining.Store(oh.remaining.Load())
	h.watched.Store(oh.watched.Load())
	if p.limits != nil && old.limits != nil && p.limits[j].limit == old.limits[i].limit {
		p.limits[j] = old.limits[i] // its places in flight and its rate's budget go on
	}
	if o.state != StateOK || o.epoch > 0 {
		p.share(j) // old's records still owed to the store go with it: say them again
	}
}

// lockFor locks the generation that holds l's key now, and returns it with l
// as a lease on it: p while p is current, else the generation that replaced
// it, where the key may sit at another index, so that what an attempt in
// flight learns of its key goes to where the key is. ok is false, and no
// lock is held, if SetKeys removed the key. Every method given a lease
// locks through it.
func (p *pool) lockFor(l lease) (_ *pool, _ lease, ok bool) {
	for {
		p.mu.Lock()
		if p.next == nil {
			return p, l, true
		}
		p.mu.Unlock() // next and moved never change once set
		if l.index = p.moved[l.index]; l.index < 0 {
			return nil, l, false
		}
		p = p.next
	}
}

// preload loads, from the store, the state of the keys of next that old does
// not hold, before next serves: a key that is dead for the other replicas is
// never sent, as with New. It waits at most WithStoreLoadTimeout.
func (s *syncer) preload(next, old *pool) {
	var fps []string
	for i := range next.slots {
		if _, kept := old.byFP[next.slots[i].fp]; !kept {
			fps = append(fps, next.slots[i].fp)
		}
	}
	if len(fps) == 0 || s.t.cfg.storeLoadTimeout <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.t.cfg.storeLoadTimeout)
	defer cancel()
	records, _ := s.t.cfg.store.Load(ctx, fps) // what it could not load, the watch will
	now := time.Now()
	for _, r := range records {
		if r.check(r.Fingerprint) == nil {
			next.apply(r, now)
		}
	}
}
