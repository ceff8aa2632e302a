package credpool

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOutageGuardKeepsLastKey(t *testing.T) {
	synctest.Test(t, testOutageGuardKeepsLastKey)
}

func testOutageGuardKeepsLastKey(t *testing.T) {
	var healthy atomic.Bool
	p := newMemProvider(func(string, int) reply {
		if healthy.Load() {
			return reply{status: 200, body: "ok"}
		}
		return reply{status: 401, body: bodyInvalidKey} // a wrong base URL looks exactly like this
	})
	var mu sync.Mutex
	var changes []StateChange
	tr := newTransport(t, []string{keyA, keyB, keyC}, WithBase(p), WithStrategy(FillFirst), WithMaxWait(0),
		WithOnStateChange(func(c StateChange) { mu.Lock(); changes = append(changes, c); mu.Unlock() }))

	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 401, status)
	states := tr.Keys()
	assert.Equal(t, StateDead, states[0].State)
	assert.Equal(t, StateDead, states[1].State)
	assert.Equal(t, StateExhausted, states[2].State, "the last key is not killed in a burst")
	assert.Equal(t, ReasonAuth, states[2].Reason, "held back: it cools as an auth failure, not as a revoked key")

	_, err := tr.RoundTrip(httptestRequest(t, p.URL))
	var nk *NoKeysError
	require.ErrorAs(t, err, &nk)
	assert.Equal(t, suspectMisconfig, nk.Suspect)
	assert.Contains(t, err.Error(), "every key rejected: check base URL and auth header")
	mu.Lock()
	require.Len(t, changes, 3)
	assert.Equal(t, suspectMisconfig, changes[2].Suspect)
	assert.Equal(t, StateExhausted, changes[2].To)
	mu.Unlock()

	// The provider recovers: the kept key works after its cooldown, and the
	// success clears the suspicion.
	healthy.Store(true)
	assert.Equal(t, time.Now().Add(5*time.Minute), states[2].ResetAt, "for the auth cooldown")
	time.Sleep(5 * time.Minute)
	status, _ = get(t, tr, p.URL)
	assert.Equal(t, 200, status)
	assert.Equal(t, StateOK, tr.Keys()[2].State)
	nk = tr.pool().exhausted(time.Now(), -1)
	assert.Empty(t, nk.Suspect)
}

func TestOutageGuardDoesNotStopRevocations(t *testing.T) {
	p := newProvider(t, func(string, int) reply { return reply{status: 401, body: bodyRevoked} })
	tr := newTransport(t, []string{keyA, keyB})
	get(t, tr, p.URL)
	for _, s := range tr.Keys() {
		assert.Equal(t, StateDead, s.State, "token_revoked is final, outage or not")
	}
}

func TestSuccessConfirmsEarlierDeaths(t *testing.T) {
	var bDead atomic.Bool
	p := newProvider(t, func(key string, _ int) reply {
		if key == keyA || (key == keyB && bDead.Load()) {
			return reply{status: 401, body: bodyInvalidKey}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, []string{keyA, keyB}, WithStrategy(FillFirst))
	status, _ := get(t, tr, p.URL) // A dies, B succeeds: the configuration is right
	require.Equal(t, 200, status)
	bDead.Store(true)
	get(t, tr, p.URL) // B is rejected later: a real death, not a burst
	for _, s := range tr.Keys() {
		assert.Equal(t, StateDead, s.State)
	}
}
