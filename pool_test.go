package credpool

import (
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// TestHotStateFillsOneCacheLine holds the layout the success path relies on:
// each key's hot state is exactly one 64-byte cache line, so that keys side
// by side in the slice never share one.
func TestHotStateFillsOneCacheLine(t *testing.T) {
	assert.Equal(t, uintptr(64), unsafe.Sizeof(hot{}))
}

// TestGenerationsAreDistinct checks that a Reset or refresh makes verdicts on
// earlier leases stale, and only on earlier ones.
func TestGenerationsAreDistinct(t *testing.T) {
	tr := newTransport(t, []string{keyA, keyB})
	p := tr.pool
	l, _, ok := p.acquire(-1)
	assert.True(t, ok)
	assert.True(t, p.current(l))
	p.mu.Lock()
	p.renew(l.index, "")
	p.mu.Unlock()
	assert.False(t, p.current(l), "a lease from before the new generation is stale")
	again := p.lease(l.index)
	assert.True(t, p.current(again))
	assert.Equal(t, l.value(), again.value(), "renewing without a new value keeps the key")

	p.mu.Lock()
	p.renew(l.index, "Bearer refreshed")
	p.mu.Unlock()
	assert.Equal(t, []string{"Bearer refreshed"}, p.lease(l.index).value())
}

// probeDay plays a day against key 0 of p on a simulated clock: whenever
// the key is back in rotation, one attempt is sent with it and fails with
// verdict v and cooldown. It returns how many attempts the key got.
func probeDay(p *pool, v verdict, cooldown time.Duration) int {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	probes := 0
	for now := start; now.Before(start.Add(24 * time.Hour)); {
		p.mu.Lock()
		p.revive(now)
		state, resetAt := p.slots[0].state, p.slots[0].resetAt
		p.mu.Unlock()
		if state != StateOK {
			now = resetAt
			continue
		}
		probes++
		p.fail(p.lease(0), v, 401, now, cooldown)
	}
	return probes
}

// TestRepeatOffendersAreProbedRarely counts the attempts a silently revoked
// key gets in a simulated day: a 401 in words no table knows cools it for 5
// minutes, and it comes back to fail again. Without strikes that is every 5
// minutes, forever: the seed's loop. With them each cooldown doubles, up to
// WithMaxCooldown.
func TestRepeatOffendersAreProbedRarely(t *testing.T) {
	tr := newTransport(t, []string{keyA, keyB})
	cooldown := 5 * time.Minute
	before := int(24 * time.Hour / cooldown) // a fixed cooldown, as every pool before
	after := probeDay(tr.pool, verdict{reason: ReasonAuth}, cooldown)
	t.Logf("probes of a silently revoked key in a day: %d with a fixed 5 min cooldown, %d with strikes", before, after)
	assert.Equal(t, 288, before)
	assert.LessOrEqual(t, after, 10)
	assert.Equal(t, after-1, tr.Keys()[0].Strikes, "every probe after the first was a strike")
}

// TestStrikesGrowAndClear: each repeat doubles the cooldown up to
// WithMaxCooldown; a failure for another reason starts afresh; a success
// forgets them.
func TestStrikesGrowAndClear(t *testing.T) {
	tr := newTransport(t, []string{keyA, keyB}, WithMaxCooldown(time.Hour))
	p := tr.pool
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	fail := func(r Reason, cooldown time.Duration) time.Duration {
		p.fail(p.lease(0), verdict{reason: r}, 429, now, cooldown)
		d := p.slots[0].resetAt.Sub(now)
		now = p.slots[0].resetAt
		p.mu.Lock()
		p.revive(now)
		p.mu.Unlock()
		return d
	}
	var got []time.Duration
	for range 6 {
		got = append(got, fail(ReasonRateLimit, 10*time.Minute))
	}
	assert.Equal(t, []time.Duration{10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour, time.Hour, time.Hour}, got)
	assert.Equal(t, 5, tr.Keys()[0].Strikes)

	assert.Equal(t, time.Minute, fail(ReasonBilling, time.Minute), "another reason starts afresh")
	assert.Equal(t, 0, tr.Keys()[0].Strikes)
	assert.Equal(t, 2*time.Minute, fail(ReasonBilling, time.Minute))

	p.succeed(p.lease(0), 0, false)
	assert.Equal(t, 0, tr.Keys()[0].Strikes, "a success forgets them")
	assert.Equal(t, time.Minute, fail(ReasonBilling, time.Minute))
	assert.Equal(t, uint32(0), p.hot[1].watched.Load(), "a key never cooled is not watched")
}

// TestStrikesNeedAProbe: a key that fails again without having cooled since
// (two requests in flight at once) earns no strike; only the first attempt
// after a cooldown is a probe.
func TestStrikesNeedAProbe(t *testing.T) {
	tr := newTransport(t, []string{keyA, keyB})
	p := tr.pool
	now := time.Now()
	l1, l2 := p.lease(0), p.lease(0)
	p.fail(l1, verdict{reason: ReasonRateLimit}, 429, now, time.Minute)
	p.fail(l2, verdict{reason: ReasonRateLimit}, 429, now, time.Minute)
	assert.Equal(t, 0, tr.Keys()[0].Strikes)
}
