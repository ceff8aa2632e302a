package credpool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// syncer keeps a Transport's pool and its Store in step. New loads the
// stored states first, within WithStoreLoadTimeout; then three background
// goroutines take over: one writes the pool's changes, one applies everyone
// else's as they come, and one loads everything again every so often, which
// repairs what a lossy watch (Redis pub/sub) missed and shows the store is
// alive. A request never waits for any of them.
type syncer struct {
	t        *Transport
	mu       sync.Mutex         // guards keys and rewatch
	keys     []string           // the pool's fingerprints, in key order
	rewatch  context.CancelFunc // ends the watch of keys, for rekey
	rekeyed  atomic.Uint64      // count of rekeys: a watch ended by one is not a failure
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	healthy  atomic.Bool  // false from the first failure until the next success
	loaded   atomic.Bool  // the stored states were loaded at least once
	lastSync atomic.Int64 // UnixNano of the store's last answer; 0 before any
}

// The pause between attempts to reach a failing store starts at
// storeRetryMin and doubles up to storeRetry.
const (
	storeRetryMin = 50 * time.Millisecond
	storeRetry    = 2 * time.Second
)

// ErrCorruptRecord is wrapped by a Store's Load for each stored record it
// could not read and left out: the store itself answered. The Transport
// logs such records and applies the rest.
var ErrCorruptRecord = errors.New("credpool: corrupt record in the store")

func startSync(t *Transport) *syncer {
	ctx, cancel := context.WithCancel(context.Background())
	s := &syncer{t: t, keys: t.pool().fingerprints(), cancel: cancel}
	s.healthy.Store(true)
	if d := t.cfg.storeLoadTimeout; d > 0 {
		first, done := context.WithTimeout(ctx, d)
		if s.load(first) != nil {
			t.cfg.logger.Warn("credpool: stored key states not loaded; starting on local state and loading in the background",
				"waited", d.String())
		}
		done()
	}
	s.wg.Add(3)
	go s.watch(ctx)
	go s.write(ctx)
	go s.resync(ctx)
	return s
}

// load applies the stored records of the pool's keys. A store that answered
// but held records it could not read is in step for the rest: those are
// logged, by fingerprint. It returns the error of a store that did not
// answer.
func (s *syncer) load(ctx context.Context) error {
	records, err := s.t.cfg.store.Load(ctx, s.watched())
	if err != nil && !errors.Is(err, ErrCorruptRecord) {
		s.failed(ctx, err)
		return err
	}
	if err != nil {
		s.t.cfg.logger.WarnContext(ctx, "credpool: store records skipped", "error", err)
	}
	for _, r := range records {
		s.apply(r)
	}
	s.loaded.Store(true)
	s.synced()
	return nil
}

// watch applies every stored record, then every record saved from then on;
// when the store fails it waits and starts over, which also catches up with
// whatever it missed, in both directions.
func (s *syncer) watch(ctx context.Context) {
	defer s.wg.Done()
	wait := storeRetryMin
	for first := true; ; first = false {
		if !first {
			// The store may have lost what it held (a Redis restarted
			// empty): say again what this pool knows.
			s.t.pool().shareAll()
		}
		if !s.loaded.Load() {
			s.load(ctx) // what New could not: the states before the first change
		}
		rekeys := s.rekeyed.Load()
		wctx, keys := s.watch1(ctx)
		err := s.t.cfg.store.Watch(wctx, keys, s.apply)
		if ctx.Err() != nil {
			return
		}
		if s.rekeyed.Load() != rekeys {
			continue // not a failure: SetKeys changed the keys to watch
		}
		if s.healthy.Load() {
			wait = storeRetryMin // the watch had worked: a new outage starts afresh
		}
		s.failed(ctx, err)
		if pause(ctx, wait, nil) != nil {
			return
		}
		wait = min(2*wait, storeRetry)
	}
}

// watched returns the fingerprints of the current keys.
func (s *syncer) watched() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys
}

// watch1 returns the context and the keys of one Watch: rekey ends it.
func (s *syncer) watch1(ctx context.Context) (context.Context, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rewatch != nil {
		s.rewatch()
	}
	ctx, s.rewatch = context.WithCancel(ctx)
	return ctx, s.keys
}

// rekey watches the keys of next, the generation SetKeys made current.
func (s *syncer) rekey(next *pool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = next.fingerprints()
	s.rekeyed.Add(1)
	if s.rewatch != nil {
		s.rewatch()
	}
}

// resync loads the stored states again every 30 s, so that a change the watch lost is applied within that, and
// LastSync says how fresh the pool's view is.
func (s *syncer) resync(ctx context.Context) {
	defer s.wg.Done()
	tick := time.NewTicker(s.t.cfg.storeResync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.load(ctx)
		}
	}
}

// apply merges one record from the store into the pool, unless it is not a
// record credpool wrote.
func (s *syncer) apply(r Record) {
	if err := r.check(r.Fingerprint); err != nil {
		s.t.cfg.logger.Warn("credpool: store record refused", "fingerprint", r.Fingerprint, "error", err.Error())
		return
	}
	if change, ok := s.t.pool().apply(r, time.Now()); ok {
		s.t.emit(context.Background(), change)
	}
	s.synced()
}

// write saves the pool's changes as they come. A record that fails to save
// stays pending, merged with any newer change of its key, until the store
// takes it.
func (s *syncer) write(ctx context.Context) {
	defer s.wg.Done()
	wait := storeRetryMin
	for {
		select {
		case <-ctx.Done():
			s.flush()
			return
		case <-s.t.pool().kick:
		}
		if err := s.save(ctx, s.t.pool().takePending()); err != nil {
			s.failed(ctx, err)
			if pause(ctx, wait, nil) != nil {
				s.flush()
				return
			}
			wait = min(2*wait, storeRetry)
			s.t.pool().poke()
			continue
		}
		wait = storeRetryMin
		s.synced()
	}
}

// save writes records, putting back the ones it could not write.
func (s *syncer) save(ctx context.Context, records []Record) error {
	for i, r := range records {
		if err := s.t.cfg.store.Save(ctx, r); err != nil {
			s.t.pool().requeue(records[i:])
			return err
		}
	}
	return nil
}

// flush makes a last attempt, bounded, to write what is pending when the
// Transport closes.
func (s *syncer) flush() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.save(ctx, s.t.pool().takePending()); err != nil {
		s.failed(ctx, err)
	}
}

// failed logs the first failure of an outage, not every retry.
func (s *syncer) failed(ctx context.Context, err error) {
	if ctx.Err() == nil && s.healthy.Swap(false) {
		s.t.cfg.logger.WarnContext(ctx, "credpool: store unavailable; working on local state", "error", err)
	}
}

// synced records that the store answered, and logs the end of an outage.
func (s *syncer) synced() {
	s.lastSync.Store(time.Now().UnixNano())
	if !s.healthy.Swap(true) {
		s.t.cfg.logger.Info("credpool: store available again")
	}
}

// health is what StoreHealth reports.
func (s *syncer) health() StoreHealth {
	h := StoreHealth{Up: s.healthy.Load(), Loaded: s.loaded.Load()}
	if n := s.lastSync.Load(); n != 0 {
		h.LastSync = time.Unix(0, n)
	}
	return h
}

// stop ends the goroutines, after a last write of what is pending.
func (s *syncer) stop() {
	s.cancel()
	s.wg.Wait()
}

// StoreHealth is what a Transport knows of its Store (WithStore).
type StoreHealth struct {
	Up     bool // the store's last answer was a success: false from a failure until the next success
	Loaded bool // the stored key states have been loaded, in New or since

	// LastSync is when the store last answered: a load, a save or a change
	// watched. The Transport loads every 30 s, so while Up it is never
	// older than that.
	LastSync time.Time
}

// StoreHealth reports whether the Transport's Store answers and when it last
// did; ok is false without a Store.
func (t *Transport) StoreHealth() (h StoreHealth, ok bool) {
	if t.sync == nil {
		return StoreHealth{}, false
	}
	return t.sync.health(), true
}
