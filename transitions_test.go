package credpool

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResetRevivesAndWakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newMemProvider(nil)
		tr := newTransport(t, []string{keyA}, WithBase(p), WithMaxWait(2*time.Minute))
		tr.pool().fail(tr.pool().lease(0), verdict{reason: ReasonRateLimit, hint: time.Minute, hinted: true}, 429, time.Now())
		time.AfterFunc(time.Second, tr.Reset)
		start := time.Now()
		status, _ := get(t, tr, p.URL) // waits for the minute's cooldown, woken by Reset
		assert.Equal(t, 200, status)
		assert.Equal(t, time.Second, time.Since(start), "woken by the Reset, not by the cooldown's end")
		assert.Equal(t, StateOK, tr.Keys()[0].State)
		assert.Empty(t, tr.Keys()[0].Reason, "a reset key has no past to show")
	})
}

func TestResetRevivesDeadKeys(t *testing.T) {
	p := newProvider(t, func(string, int) reply { return reply{status: 401, body: bodyRevoked} })
	tr := newTransport(t, []string{keyA, keyB})
	get(t, tr, p.URL)
	for _, s := range tr.Keys() {
		require.Equal(t, StateDead, s.State)
	}
	tr.Reset()
	for _, s := range tr.Keys() {
		assert.Equal(t, StateOK, s.State)
	}
}

func TestLateVerdictAfterResetIsIgnored(t *testing.T) {
	sent := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if calls.Add(1) > 1 {
			return answer(r, 200, "ok"), nil
		}
		close(sent)
		<-release
		return answer(r, 401, bodyInvalidKey), nil
	})
	tr := newTransport(t, []string{keyA}, WithBase(base))
	done := make(chan *http.Response)
	go func() {
		resp, _ := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
		done <- resp
	}()
	<-sent
	tr.Reset() // the key was revived while the attempt was in flight
	close(release)
	resp := <-done
	require.NotNil(t, resp)
	resp.Body.Close()
	assert.Equal(t, StateOK, tr.Keys()[0].State, "a response to an attempt from before Reset must not kill the key")
}

func TestCooledKeyReturnsAtItsResetTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newMemProvider(func(key string, n int) reply {
			if key == keyA && n == 1 {
				return reply{status: 429, header: map[string]string{"Retry-After": "30"}, body: bodyRateLimit}
			}
			return reply{status: 200, body: "ok"}
		})
		var changes []StateChange
		var mu sync.Mutex
		tr := newTransport(t, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst), WithOnStateChange(func(c StateChange) {
			mu.Lock()
			changes = append(changes, c)
			mu.Unlock()
		}))
		get(t, tr, p.URL)
		assert.Equal(t, StateExhausted, tr.Keys()[0].State)
		time.Sleep(30*time.Second - time.Nanosecond)
		assert.Equal(t, StateExhausted, tr.Keys()[0].State, "not a moment early")
		time.Sleep(time.Nanosecond)
		assert.Equal(t, StateOK, tr.Keys()[0].State, "Keys reports an ended cooldown as ok")
		get(t, tr, p.URL)
		assert.Equal(t, []string{keyA, keyB, keyA}, p.keys())
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, changes, 2)
		label := tr.Keys()[0].Label
		assert.Equal(t, StateChange{Index: 0, Label: label, From: StateOK, To: StateExhausted, Reason: ReasonRateLimit, Status: 429, ResetAt: changes[0].ResetAt}, changes[0])
		assert.Equal(t, StateChange{Index: 0, Label: label, From: StateExhausted, To: StateOK}, changes[1])
	})
}

func TestCooldownsMergeToLaterDeadline(t *testing.T) {
	tr := newTransport(t, []string{keyA})
	l, _, _ := tr.pool().acquire(-1, time.Now)
	now := time.Now()
	later := now.Add(time.Hour)
	changed := len(tr.pool().fail(l, verdict{reason: ReasonBilling, hint: time.Hour, hinted: true}, 429, now)) > 0
	require.True(t, changed)
	changed = len(tr.pool().fail(l, verdict{reason: ReasonRateLimit, hint: time.Minute, hinted: true}, 429, now)) > 0
	assert.False(t, changed, "a shorter cooldown does not cut a longer one")
	assert.Equal(t, later, tr.Keys()[0].ResetAt)
	assert.Equal(t, ReasonBilling, tr.Keys()[0].Reason)
}

func TestDeadKeyStaysDeadOnLaterVerdicts(t *testing.T) {
	tr := newTransport(t, []string{keyA})
	l, _, _ := tr.pool().acquire(-1, time.Now)
	tr.pool().fail(l, verdict{reason: ReasonAuthPermanent, final: true}, 401, time.Now())
	now := time.Now()
	changed := len(tr.pool().fail(l, verdict{reason: ReasonRateLimit, hint: time.Millisecond, hinted: true}, 429, now)) > 0
	assert.False(t, changed)
	assert.Equal(t, StateDead, tr.pool().status(now.Add(time.Hour))[0].State, "no cooldown's end revives it")
}

// probeDay plays a day against key 0 of p on a simulated clock: whenever
// the key is back in rotation, one attempt is sent with it and fails with
// verdict v and cooldown. It returns how many attempts the key got.
func probeDay(p *pool, v verdict, cooldown time.Duration) int {
	v.hint, v.hinted = cooldown, true
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
		p.fail(p.lease(0), v, 401, now)
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
	after := probeDay(tr.pool(), verdict{reason: ReasonAuth}, cooldown)
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
	p := tr.pool()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	fail := func(r Reason, cooldown time.Duration) time.Duration {
		p.fail(p.lease(0), verdict{reason: r, hint: cooldown, hinted: true}, 429, now)
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
	p := tr.pool()
	now := time.Now()
	l1, l2 := p.lease(0), p.lease(0)
	p.fail(l1, verdict{reason: ReasonRateLimit, hint: time.Minute, hinted: true}, 429, now)
	p.fail(l2, verdict{reason: ReasonRateLimit, hint: time.Minute, hinted: true}, 429, now)
	assert.Equal(t, 0, tr.Keys()[0].Strikes)
}
