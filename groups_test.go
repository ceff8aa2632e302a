package credpool

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const bodyKeyLimit = `{"error":{"message":"Key limit exceeded","code":"key_limit_exceeded"}}`

func TestQuotaGroups(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		body       string
		groupCools bool // keyB, keyA's sibling, cools with it
	}{
		{name: "the account is out of quota", status: 429, body: bodyQuota, groupCools: true},
		{name: "a 402 without a body", status: 402, groupCools: true},
		{name: "the key's own limit", status: 402, body: bodyKeyLimit},
		{name: "words alone never cool a group", status: 400, body: bodyCredit},
		{name: "a rate limit is the key's", status: 429, body: bodyRateLimit},
		{name: "a revocation is the key's", status: 401, body: bodyRevoked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, func(key string, _ int) reply {
				if key == keyA {
					return reply{status: tc.status, body: tc.body}
				}
				return reply{status: 200, body: "ok"}
			})
			var mu sync.Mutex
			var changes []StateChange
			tr := newTransport(t, []string{keyA, keyB, keyC}, WithStrategy(FillFirst), WithGroups("acme", "acme", ""),
				WithOnStateChange(func(c StateChange) { mu.Lock(); changes = append(changes, c); mu.Unlock() }))

			status, _ := get(t, tr, p.URL)
			assert.Equal(t, 200, status, "served by another key")
			keys := tr.Keys()
			assert.NotEqual(t, StateOK, keys[0].State, "the key that failed pays")
			assert.Equal(t, StateOK, keys[2].State, "a key of no group is untouched")
			mu.Lock()
			defer mu.Unlock()
			if tc.groupCools {
				assert.Equal(t, StateExhausted, keys[1].State, "its sibling cools too")
				assert.Equal(t, ReasonBilling, keys[1].Reason)
				assert.Equal(t, keys[0].ResetAt, keys[1].ResetAt, "until the same time")
				assert.Equal(t, []string{keyA, keyC}, p.keys(), "the sibling is never probed")
				require.Len(t, changes, 2)
				assert.Equal(t, StateChange{Index: 1, Label: keys[1].Label, From: StateOK, To: StateExhausted,
					Reason: ReasonBilling, Status: tc.status, ResetAt: keys[1].ResetAt}, changes[1])
				return
			}
			assert.Equal(t, StateOK, keys[1].State, "its sibling stays in rotation")
			assert.Equal(t, []string{keyA, keyB}, p.keys(), "and serves")
			assert.Len(t, changes, 1)
		})
	}
}

func TestQuotaGroupsLeaveDeadKeysDead(t *testing.T) {
	p := newProvider(t, func(key string, _ int) reply {
		switch key {
		case keyA:
			return reply{status: 429, body: bodyQuota}
		case keyB:
			return reply{status: 401, body: bodyRevoked}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, []string{keyB, keyA, keyC}, WithStrategy(FillFirst), WithGroups("acme", "acme", "acme"))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 429, status, "B died, then A's quota cooled C too: A's answer goes back")
	keys := tr.Keys()
	assert.Equal(t, StateDead, keys[0].State, "a dead sibling stays dead")
	assert.Equal(t, StateExhausted, keys[2].State)
	assert.Equal(t, 0, p.count(keyC))
}

func TestGroupsMustMatchTheKeys(t *testing.T) {
	_, err := New([]string{keyA, keyB}, WithGroups("acme"))
	assert.ErrorIs(t, err, ErrInvalidOption)
	assert.EqualError(t, err, "credpool: invalid option: WithGroups: 1 values for 2 keys")
}

// TestQuotaByItsNumberCoolsTheGroup: a rate limit whose wait is a day is a
// quota (Azure's "retry after 86400 seconds"), and an account's.
func TestQuotaByItsNumberCoolsTheGroup(t *testing.T) {
	p := newProvider(t, func(key string, _ int) reply {
		if key == keyA {
			return reply{status: 429, header: map[string]string{"Retry-After": "86400"},
				body: `{"error":{"code":"429","message":"Requests have exceeded token rate limit of your current pricing tier."}}`}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, []string{keyA, keyB, keyC}, WithStrategy(FillFirst), WithGroups("acme", "acme", ""))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 200, status)
	assert.Equal(t, []State{StateExhausted, StateExhausted, StateOK}, []State{tr.Keys()[0].State, tr.Keys()[1].State, tr.Keys()[2].State})
	assert.Equal(t, ReasonBilling, tr.Keys()[1].Reason)
}
