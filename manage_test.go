package credpool

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDisabledKeyStaysOutUntilEnabled(t *testing.T) {
	p := newProvider(t, revokesKeyA)
	var changes []StateChange
	tr := newTransport(t, []string{keyA, keyB, keyC}, WithStrategy(FillFirst),
		WithOnStateChange(func(c StateChange) { changes = append(changes, c) }))
	require.NoError(t, tr.DisableKey(1))
	require.Equal(t, StateDisabled, tr.Keys()[1].State)

	for range 4 {
		status, _ := get(t, tr, p.URL)
		require.Equal(t, 200, status)
	}
	assert.Zero(t, p.count(keyB), "a disabled key is never sent")
	assert.Equal(t, StateDead, tr.Keys()[0].State)

	tr.Reset()
	assert.Equal(t, StateDisabled, tr.Keys()[1].State, "Reset revives the dead, not the disabled")
	assert.Equal(t, StateOK, tr.Keys()[0].State)
	require.NoError(t, tr.ResetKey(1))
	assert.Equal(t, StateDisabled, tr.Keys()[1].State, "nor does ResetKey")

	require.NoError(t, tr.EnableKey(1))
	require.NoError(t, tr.EnableKey(2), "enabling a key that is not disabled changes nothing")
	assert.Equal(t, StateOK, tr.Keys()[1].State)
	require.NoError(t, tr.DisableKey(0))
	require.NoError(t, tr.DisableKey(2))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 200, status)
	assert.Equal(t, 1, p.count(keyB), "the enabled key serves again")

	assert.Equal(t, []StateChange{
		{Index: 1, Label: tr.Keys()[1].Label, From: StateOK, To: StateDisabled},
		{Index: 0, Label: tr.Keys()[0].Label, From: StateOK, To: StateDead, Reason: ReasonAuthPermanent, Status: 401},
		{Index: 0, Label: tr.Keys()[0].Label, From: StateDead, To: StateOK},
		{Index: 1, Label: tr.Keys()[1].Label, From: StateDisabled, To: StateOK},
		{Index: 0, Label: tr.Keys()[0].Label, From: StateOK, To: StateDisabled},
		{Index: 2, Label: tr.Keys()[2].Label, From: StateOK, To: StateDisabled},
	}, changes)
}

func TestDisablingEveryKeySaysSo(t *testing.T) {
	p := newProvider(t, nil)
	tr := newTransport(t, []string{keyA, keyB}, WithMaxWait(0))
	require.NoError(t, tr.DisableKey(0))
	require.NoError(t, tr.DisableKey(1))
	_, err := send(t, tr, t.Context(), p.URL)
	var noKeys *NoKeysError
	require.ErrorAs(t, err, &noKeys)
	assert.Equal(t, 2, noKeys.Disabled)
	assert.Contains(t, err.Error(), "2 disabled")
	assert.Zero(t, p.count(keyA)+p.count(keyB))
}

func TestManageNamesABadIndex(t *testing.T) {
	tr := newTransport(t, []string{keyA})
	for name, f := range map[string]func(int) error{"ResetKey": tr.ResetKey, "DisableKey": tr.DisableKey, "EnableKey": tr.EnableKey} {
		err := f(1)
		require.Error(t, err, name)
		assert.Equal(t, "credpool: "+name+": no key at index 1 (the pool has 1)", err.Error())
		assert.Error(t, f(-1), name)
	}
}

// A late verdict on an attempt sent before DisableKey is ignored: the
// operator's decision stands, and the key is not killed behind their back.
func TestLateVerdictDoesNotUndoDisable(t *testing.T) {
	tr := newTransport(t, []string{keyA, keyB})
	l, _, ok := tr.pool().acquire(-1, time.Now)
	require.True(t, ok)
	require.NoError(t, tr.DisableKey(l.index))
	assert.Nil(t, tr.pool().fail(l, verdict{reason: ReasonAuthPermanent}, 401, time.Now()))
	assert.Equal(t, StateDisabled, tr.Keys()[l.index].State)
}

// A key disabled on one replica is disabled on every replica, and a kill of
// the same key in its old epoch cannot outrank the decision.
func TestDisableIsShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		p := newMemProvider(revokesKeyA)
		a := storeTransport(t, store, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst))
		b := storeTransport(t, store, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst))
		get(t, b, p.URL)
		synctest.Wait()
		require.Equal(t, StateDead, a.Keys()[0].State)

		require.NoError(t, a.DisableKey(0))
		synctest.Wait()
		assert.Equal(t, StateDisabled, b.Keys()[0].State, "the decision holds everywhere")
		b.Reset()
		synctest.Wait()
		assert.Equal(t, StateDisabled, a.Keys()[0].State, "a Reset elsewhere does not undo it")

		require.NoError(t, b.EnableKey(0))
		synctest.Wait()
		assert.Equal(t, StateOK, a.Keys()[0].State)
	})
}
