package credpool

// The outage guard. A kill that would leave no key alive, when every other
// key also died since the last success, is more likely a wrong base URL or
// auth header, or a provider answering 401 to valid keys, than a pool of
// revoked keys. Unless the verdict is final, the last key then only cools
// (for the ReasonAuth cooldown, with reason auth), and the pool reports the
// suspicion until a success proves the configuration right. Kills learnt
// from the store count toward the burst as local ones do.

// suspectMisconfig is what the outage guard says when it holds back a kill.
const suspectMisconfig = "every key rejected: check base URL and auth header"

// holdsBack reports whether the guard holds back the kill of key i by v:
// v is not final, and every other key died since the last success. The
// caller holds the lock.
func (p *pool) holdsBack(i int, v verdict) bool {
	if v.final || p.burst != len(p.slots)-1 {
		return false
	}
	for j := range p.slots {
		if j != i && p.slots[j].state != StateDead {
			return false
		}
	}
	return true
}

// holdBack records the guard's suspicion and returns it. The caller holds
// the lock.
func (p *pool) holdBack() string {
	p.suspect = suspectMisconfig
	return p.suspect
}

// countKill counts a key's death toward the burst. The caller holds the
// lock.
func (p *pool) countKill() {
	p.burst++
	p.bursting.Store(true)
}

// endBurst forgets the kills since the last success, and the suspicion they
// raised. The caller holds the lock.
func (p *pool) endBurst() {
	p.burst, p.suspect = 0, ""
	p.bursting.Store(false)
}
