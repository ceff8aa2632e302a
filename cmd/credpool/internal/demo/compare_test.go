// compare_test.go tests the comparison's claims on the day of seed 1, and
// its exact numbers.

package demo

import (
	"net/http"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keptUp reports whether credpool's leg kept up with its sped-up clock: no
// request went out more than a few simulated minutes late (a timer a few
// milliseconds late). A machine so busy that the traffic stalls for longer
// bunches requests up after the stall: credpool and the provider still
// agree on the time, so every claim holds, but a stall can skip a
// rate-limit window, or the time of a probe, and change a count of
// attempts.
func keptUp(t *testing.T, c *comparison) bool {
	if c.credpool.late > busy {
		t.Logf("the machine was busy: requests went out up to %s late on credpool's clock; checking the claims, not the exact counts", c.credpool.late)
		return false
	}
	return true
}

// TestNumbers pins the numbers of seed 1. The naive pool's leg runs on a
// stepped clock, so its numbers are exact. credpool's runs on the real
// clock sped up, but its numbers are read from what the provider answered
// and each request's luck, so they are exact too, as long as the machine
// kept up.
func TestNumbers(t *testing.T) {
	c := playDay(t)
	assert.Equal(t, score{revokedHits: 208, failed: 59, waited: 0, attempts: 1800}, c.score(c.naive))

	cp := c.score(c.credpool)
	assert.Equal(t, 1, cp.revokedHits)
	assert.Equal(t, 8, cp.failed)
	assert.Equal(t, 27187500*time.Microsecond, cp.waited)
	if keptUp(t, c) {
		assert.Equal(t, 1532, cp.attempts)
	} else {
		// At worst, every rate-limit window and a probe of the quota key
		// skipped.
		assert.InDelta(t, 1532, cp.attempts, float64(len(c.sc.limits)+1))
	}
}

func TestRevokedKey(t *testing.T) {
	c := playDay(t)
	k := c.sc.revokedKey

	// The naive pool sends requests to the revoked key throughout the day:
	// some in every three hours after it was revoked.
	for from := c.sc.revokedAt; from < dayLen; from += 3 * time.Hour {
		n := 0
		for _, a := range c.naive.attempts {
			if a.key == k && a.status == http.StatusUnauthorized && a.at >= from && a.at < from+3*time.Hour {
				n++
			}
		}
		assert.Positive(t, n, "naive pool, from %s", timeOfDay(from))
	}

	// credpool sends it one, which kills it, and none after its death.
	diedAt, died := death(c.credpool, k)
	require.True(t, died)
	assert.GreaterOrEqual(t, diedAt, c.sc.revokedAt)
	assert.Zero(t, sentAfterRefusal(c.credpool, k))
	var deaths []change
	for _, ch := range c.credpool.changes {
		if ch.key == k {
			deaths = append(deaths, ch)
		}
	}
	assert.Equal(t, []change{{key: k, at: diedAt, state: credpool.StateDead}}, deaths, "dead, and for good")
}

func TestFewerFailures(t *testing.T) {
	c := playDay(t)
	naive, cp := c.score(c.naive), c.score(c.credpool)
	assert.Less(t, cp.failed, naive.failed)
	assert.Less(t, cp.attempts, naive.attempts)
	// credpool fails only requests whose every try met an overload.
	for _, t0 := range c.credpool.failed {
		assert.True(t, inOverload(c.sc, t0, c.credpool.late), "a credpool failure at %s, outside the overloads", timeOfDay(t0))
	}
}

// inOverload reports whether t falls in one of the overloads, give or take
// how late the requests went out.
func inOverload(sc *scenario, t, late time.Duration) bool {
	for _, o := range sc.overloads {
		if t >= o.from && t <= o.to+late {
			return true
		}
	}
	return false
}

func TestQuotaKeyComesBack(t *testing.T) {
	c := playDay(t)
	tests := []struct {
		name          string
		leg           *leg
		exact         bool
		refused       int
		afterMidnight time.Duration // back at most this long after midnight
	}{
		// Probed every five minutes, the naive pool's key is back within five
		// minutes of its credit, after 142 refusals.
		{"naive pool", c.naive, true, 142, naiveCooldown},
		// credpool probes after 1 h, then 2, 4 and 8: back soon after 01:00,
		// after 4 refusals. Each probe waits for the key's turn in the
		// rotation, a few minutes, and the four add up.
		{"credpool", c.credpool, keptUp(t, c), 4, time.Hour + 30*time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			back, refused, ok := c.backAt(tt.leg)
			require.True(t, ok, "the key came back")
			assert.True(t, nextDay(back), "back at %s, on the next day", timeOfDay(back))
			if tt.exact {
				assert.LessOrEqual(t, back, c.sc.quotaBack+tt.afterMidnight, "back at %s", timeOfDay(back))
				assert.Equal(t, tt.refused, refused)
			}
		})
	}
}

func TestClaimsHold(t *testing.T) {
	c := playDay(t)
	for _, cl := range c.claims() {
		assert.True(t, cl.held, cl.text)
	}
}
