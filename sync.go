package credpool

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// syncer keeps a Transport's pool and its Store in step, from two background
// goroutines: one writes the pool's changes, one applies everyone else's. A
// request never waits for either.
type syncer struct {
	t       *Transport
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	healthy atomic.Bool // false from the first failure until the next success
}

// The pause between attempts to reach a failing store starts at
// storeRetryMin and doubles up to storeRetry.
const (
	storeRetryMin = 50 * time.Millisecond
	storeRetry    = 2 * time.Second
)

func startSync(t *Transport) *syncer {
	ctx, cancel := context.WithCancel(context.Background())
	s := &syncer{t: t, cancel: cancel}
	s.healthy.Store(true)
	s.wg.Add(2)
	go s.watch(ctx)
	go s.write(ctx)
	return s
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
			s.t.pool.shareAll()
		}
		err := s.t.cfg.store.Watch(ctx, s.apply)
		if ctx.Err() != nil {
			return
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

// apply merges one record from the store into the pool.
func (s *syncer) apply(r Record) {
	if change, ok := s.t.pool.apply(r); ok {
		s.t.emit(context.Background(), change)
	}
	s.recovered()
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
		case <-s.t.pool.kick:
		}
		if err := s.save(ctx, s.t.pool.takePending()); err != nil {
			s.failed(ctx, err)
			if pause(ctx, wait, nil) != nil {
				s.flush()
				return
			}
			wait = min(2*wait, storeRetry)
			s.t.pool.poke()
			continue
		}
		wait = storeRetryMin
		s.recovered()
	}
}

// save writes records, putting back the ones it could not write.
func (s *syncer) save(ctx context.Context, records []Record) error {
	for i, r := range records {
		if err := s.t.cfg.store.Save(ctx, r); err != nil {
			s.t.pool.requeue(records[i:])
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
	if err := s.save(ctx, s.t.pool.takePending()); err != nil {
		s.failed(ctx, err)
	}
}

// failed logs the first failure of an outage, not every retry.
func (s *syncer) failed(ctx context.Context, err error) {
	if ctx.Err() == nil && s.healthy.Swap(false) {
		s.t.cfg.logger.WarnContext(ctx, "credpool: store unavailable; working on local state", "error", err)
	}
}

// recovered logs the end of an outage.
func (s *syncer) recovered() {
	if !s.healthy.Swap(true) {
		s.t.cfg.logger.Info("credpool: store available again")
	}
}

// stop ends both goroutines, after a last write of what is pending.
func (s *syncer) stop() {
	s.cancel()
	s.wg.Wait()
}
