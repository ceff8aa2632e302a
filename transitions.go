package credpool

import "time"

// This file holds what an outcome does to a key. The pool is the one owner
// of that decision: a caller reports the attempt's verdict, and the pool
// chooses dead or cooling, and for how long.

// revive brings back every key whose cooldown ended by now. The caller holds
// the lock.
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

// fail records a failed attempt whose verdict kills or cools its key, at now.
// It applies the new state unless the key was reset or refreshed since the
// attempt was sent, is already dead, or already cools until later (two
// cooldowns merge to the later deadline). A cooldown lasts the provider's
// hint if it gave one, else the reason's (WithCooldown), grown for a repeat
// offender (see grown) and clamped to WithMaxCooldown; the outage guard may
// hold back a kill (see guard.go). It returns the change when the key's
// state or reason changed; a cooldown that only grows longer is applied
// silently. A billing verdict whose evidence is account-wide cools the key's
// quota group with it (see WithGroups), and returns their changes too.
func (p *pool) fail(l lease, v verdict, status int, now time.Time) []StateChange {
	p, l, ok := p.lockFor(l)
	if !ok {
		return nil
	}
	defer p.unlock()
	s := &p.slots[l.index]
	s.failures++
	if !p.current(l) || s.state == StateDead {
		return nil
	}
	from, reason := s.stateAt(now), v.reason
	cooldown := p.cooldown[v.reason]
	if v.hinted {
		cooldown = v.hint
	}
	until := now.Add(p.grown(l.index, v.reason, cooldown))
	var suspect string
	switch {
	case v.reason == ReasonAuthPermanent && p.holdsBack(l.index, v):
		suspect, reason = p.holdBack(), ReasonAuth
		p.move(l.index, StateExhausted, now.Add(p.cooldown[ReasonAuth]))
	case v.reason == ReasonAuthPermanent:
		p.move(l.index, StateDead, time.Time{})
		p.countKill()
	case from == StateExhausted && !until.After(s.resetAt):
		return nil
	default:
		p.move(l.index, StateExhausted, until)
	}
	quiet := from == s.state && reason == s.reason && suspect == ""
	s.reason = reason
	p.share(l.index)
	var changes []StateChange
	if !quiet { // a cooldown extended for the same reason is no news
		changes = append(changes, p.change(l.index, from, status, suspect))
	}
	if v.accountWide && reason == ReasonBilling {
		changes = p.coolGroup(l.index, s.resetAt, status, now, changes)
	}
	return changes
}

// coolGroup cools, until until, every key that shares key i's quota group
// and is not already dead or cooling longer, and appends their changes. The
// caller holds the lock.
func (p *pool) coolGroup(i int, until time.Time, status int, now time.Time, changes []StateChange) []StateChange {
	g := p.groups[i]
	if g < 0 {
		return changes
	}
	for j := range p.slots {
		s := &p.slots[j]
		from := s.stateAt(now)
		joins := from == StateOK || from == StateExhausted && until.After(s.resetAt) // dead and disabled keys stay so
		if j == i || p.groups[j] != g || !joins {
			continue
		}
		s.reason = ReasonBilling
		p.move(j, StateExhausted, until)
		p.share(j)
		changes = append(changes, p.change(j, from, status, ""))
	}
	return changes
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

// forgive clears key i's strikes and probe, after a success or a Reset, and
// tells the success path it need not look again. The caller holds the lock.
func (p *pool) forgive(i int) {
	s := &p.slots[i]
	s.strikes, s.probing = 0, false
	p.hot[i].watched.Store(0)
}

// failTransient records a failed attempt that is not the key's fault.
func (p *pool) failTransient(l lease) {
	p, l, ok := p.lockFor(l)
	if !ok {
		return
	}
	p.slots[l.index].failures++
	p.mu.Unlock()
}

// succeed records a success. It ends a burst of kills, confirming them, and
// keeps the provider's remaining-requests count. It takes the lock only when
// there is a burst to end or a strike to forgive: the success path stays
// lock-free.
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

// cool takes a key out of rotation until its limit resets, on the provider's
// word that it has nothing left (proactive steering). It returns the change,
// if any.
func (p *pool) cool(l lease, until, now time.Time) (StateChange, bool) {
	p, l, ok := p.lockFor(l)
	if !ok {
		return StateChange{}, false
	}
	defer p.unlock()
	s := &p.slots[l.index]
	if !p.current(l) || s.state != StateOK || !until.After(now) {
		return StateChange{}, false
	}
	s.reason = ReasonRateLimit
	p.move(l.index, StateExhausted, until)
	p.share(l.index)
	return p.change(l.index, StateOK, 0, ""), true
}

// reset puts the keys at indexes (every key if none is given) back in
// StateOK, makes verdicts on attempts already in flight with them stale, and
// wakes requests waiting for a key. A disabled key stays disabled: only
// enable reverses an operator's decision.
func (p *pool) reset(indexes ...int) []StateChange {
	p.mu.Lock()
	defer p.unlock()
	if len(indexes) == 0 {
		indexes = make([]int, len(p.slots))
		for i := range indexes {
			indexes[i] = i
		}
	}
	var changes []StateChange
	for _, i := range indexes {
		if p.slots[i].state != StateDisabled {
			changes = p.restart(i, StateOK, changes)
		}
	}
	p.wakeWaiters()
	return changes
}

// restart moves key i to state (StateOK or StateDisabled) in a new epoch,
// with a clean past: verdicts on attempts in flight with it are stale, and
// the store learns the decision, which outranks anything said of the key
// before it. It appends the change, if the state changed. The caller holds
// the lock.
func (p *pool) restart(i int, state State, changes []StateChange) []StateChange {
	s := &p.slots[i]
	p.renew(i, "")
	s.epoch = min(s.epoch+1, maxEpoch)
	from := s.state
	s.reason = "" // a reset key has no past to show, nor to pay for
	if from != state {
		p.move(i, state, time.Time{})
		changes = append(changes, p.change(i, from, 0, ""))
	}
	p.forgive(i)
	p.share(i)
	return changes
}

// disable takes key i out of rotation until enable, whatever its state: an
// operator's decision, which no verdict, cooldown, Reset, re-check or store
// record of an earlier epoch reverses.
func (p *pool) disable(i int) []StateChange {
	p.mu.Lock()
	defer p.unlock()
	if p.slots[i].state == StateDisabled {
		return nil
	}
	return p.restart(i, StateDisabled, nil)
}

// enable puts a disabled key back in rotation, and wakes requests waiting for
// a key. A key that is not disabled is left as it is.
func (p *pool) enable(i int) []StateChange {
	p.mu.Lock()
	defer p.unlock()
	if p.slots[i].state != StateDisabled {
		return nil
	}
	defer p.wakeWaiters()
	return p.restart(i, StateOK, nil)
}

// recheckPassed puts a dead key back in rotation after a re-check of it, sent
// as l, succeeded (see recheck.go). A key reset, refreshed, disabled or
// revived since l was taken is left as it is.
func (p *pool) recheckPassed(l lease) []StateChange {
	p, l, ok := p.lockFor(l)
	if !ok {
		return nil
	}
	defer p.unlock()
	if !p.current(l) || p.slots[l.index].state != StateDead {
		return nil
	}
	defer p.wakeWaiters()
	return p.restart(l.index, StateOK, nil)
}

// dead leases every dead key, for a re-check: the leases are not counted as
// attempts, and tell whether the key changed while the re-check was out.
func (p *pool) dead() []lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []lease
	for i := range p.slots {
		if p.slots[i].state == StateDead {
			out = append(out, lease{index: i, id: p.hot[i].id.Load()})
		}
	}
	return out
}
