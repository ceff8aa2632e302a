package credpool

import "time"

// This file is the pool's side of sharing state through a Store: the records
// owed to the store's writer (see sync.go), and the records learnt from it.

// record is key i's shared state. The caller holds the lock.
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

// poke wakes the writer, unless it is already due to wake.
func (p *pool) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
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

// apply merges a record from the store into its key's state, at now. A
// record of a key this pool does not hold is ignored; a cooldown past
// WithMaxCooldown is clamped, as a provider's would be. A key killed
// elsewhere counts toward the outage guard's burst, as a local kill does:
// only a success ends one. A key that becomes usable wakes the requests
// waiting for one. It returns the change, if any.
func (p *pool) apply(r Record, now time.Time) (StateChange, bool) {
	p.mu.Lock()
	defer p.unlock()
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
		p.countKill()
	case merged.State == StateOK && from != StateOK:
		p.wakeWaiters()
	}
	return p.change(i, from, 0, ""), true
}
