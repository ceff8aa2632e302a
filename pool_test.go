package credpool

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestViewsReadTheStateAtNow: the pool takes the time as a parameter, so one
// cooldown reads as exhausted before its end and ok from its end on, in every
// view, without waiting for it.
func TestViewsReadTheStateAtNow(t *testing.T) {
	tr := newTransport(t, []string{keyA, keyB, keyC})
	p := tr.pool()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	resetAt := now.Add(time.Minute)
	p.fail(p.lease(0), verdict{reason: ReasonRateLimit, hint: time.Minute, hinted: true}, 429, now)
	p.fail(p.lease(1), verdict{reason: ReasonAuthPermanent, final: true}, 401, now)

	cases := []struct {
		name      string
		at        time.Time
		want      State
		wantReset time.Time
		noKeys    NoKeysError
	}{
		{name: "cooling", at: now, want: StateExhausted, wantReset: resetAt,
			noKeys: NoKeysError{OK: 1, Exhausted: 1, Dead: 1, SoonestReset: resetAt}},
		{name: "a moment before the end", at: resetAt.Add(-time.Nanosecond), want: StateExhausted, wantReset: resetAt,
			noKeys: NoKeysError{OK: 1, Exhausted: 1, Dead: 1, SoonestReset: resetAt}},
		{name: "at the end", at: resetAt, want: StateOK, noKeys: NoKeysError{OK: 2, Dead: 1}},
		{name: "long after", at: now.Add(time.Hour), want: StateOK, noKeys: NoKeysError{OK: 2, Dead: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys := p.status(tc.at)
			assert.Equal(t, tc.want, keys[0].State)
			assert.Equal(t, tc.wantReset, keys[0].ResetAt)
			assert.Equal(t, ReasonRateLimit, keys[0].Reason, "the reason stays until a success or Reset")
			assert.Equal(t, StateDead, keys[1].State)
			noKeys := p.exhausted(tc.at, -1)
			assert.Equal(t, tc.noKeys, *noKeys)
		})
	}
}
