package credpool

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const keyD = "sk-test-dddddddddddddddddddddddd4444"

func TestSetKeysKeepsTheStateOfKeysThatStay(t *testing.T) {
	p := newProvider(t, func(key string, _ int) reply {
		switch key {
		case keyA:
			return reply{status: 401, body: bodyRevoked}
		case keyB:
			return reply{status: 429, header: map[string]string{"Retry-After": "600"}, body: bodyRateLimit}
		}
		return reply{status: 200, body: "ok"}
	})
	var log syncBuffer
	tr := newTransport(t, []string{keyA, keyB, keyC}, WithStrategy(FillFirst),
		WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	status, _ := get(t, tr, p.URL)
	require.Equal(t, 200, status)
	before := tr.Keys()
	require.Equal(t, []State{StateDead, StateExhausted, StateOK}, states(before))

	require.NoError(t, tr.SetKeys([]string{keyD, keyC, keyB}))
	after := tr.Keys()
	assert.Equal(t, []State{StateOK, StateOK, StateExhausted}, states(after))
	assert.Equal(t, before[1], after[2], "B keeps its cooldown, reason and counts")
	assert.Equal(t, before[2], after[1], "C keeps its counts")
	assert.Equal(t, uint64(3), tr.Stats().Attempts, "the removed key's attempts still count")

	require.NoError(t, tr.SetKeys([]string{keyA, keyB, keyC, keyD}))
	assert.Equal(t, StateOK, tr.Keys()[0].State, "a key removed and added again starts afresh")
	require.NoError(t, tr.DisableKey(0))
	require.NoError(t, tr.SetKeys([]string{keyB, keyA}))
	assert.Equal(t, []State{StateExhausted, StateDisabled}, states(tr.Keys()), "a disabled key stays disabled")

	_, err := send(t, tr, context.Background(), p.URL)
	var noKeys *NoKeysError
	require.ErrorAs(t, err, &noKeys)
	assert.Equal(t, NoKeysError{Exhausted: 1, Disabled: 1, SoonestReset: after[2].ResetAt}, *noKeys)
	assert.Equal(t, 1, p.count(keyB), "B is not sent before its time")
	logs := log.String()
	assert.Contains(t, logs, `msg="credpool: keys replaced" keys=3 added=[`+after[0].Label+`] removed=[`+before[0].Label+`]`)
	for _, k := range []string{keyA, keyB, keyC, keyD} {
		assert.NotContains(t, logs, k[len(k)-8:])
	}
}

func states(keys []KeyStatus) []State {
	out := make([]State, len(keys))
	for i, k := range keys {
		out[i] = k.State
	}
	return out
}

// Requests sent while the keys change, over and over, all succeed: there is
// never a moment with no keys.
func TestSetKeysUnderLoad(t *testing.T) {
	p := newProvider(t, nil)
	tr := newTransport(t, []string{keyA, keyB}, WithMaxWait(0))
	sets := [][]string{{keyA, keyB}, {keyC}, {keyB, keyD}, {keyD, keyA, keyC}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			assert.NoError(t, tr.SetKeys(sets[n%len(sets)]))
		}
	})
	statuses := getConcurrently(t, tr, p.URL, 400)
	close(stop)
	wg.Wait()
	for _, s := range statuses {
		require.Equal(t, 200, s)
	}
	assert.Len(t, p.keys(), 400, "one attempt per request")
}

// An attempt in flight when its key is removed finishes on it; one in flight
// with a key that stays is charged to the key where it now is.
func TestSetKeysInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan string, 2)
	p := newProvider(t, func(key string, n int) reply {
		if n == 1 && (key == keyA || key == keyB) {
			arrived <- key
			<-release
		}
		if key == keyB {
			return reply{status: 429, header: map[string]string{"Retry-After": "600"}, body: bodyRateLimit}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, []string{keyA, keyB}, WithStrategy(RoundRobin), WithMaxRetries(0))
	results := make(chan int, 2)
	for range 2 {
		go func() {
			status, _ := get(t, tr, p.URL)
			results <- status
		}()
	}
	<-arrived
	<-arrived
	require.NoError(t, tr.SetKeys([]string{keyC, keyB}))
	close(release)
	assert.ElementsMatch(t, []int{200, 200}, []int{<-results, <-results},
		"A's request finishes on A; B's 429 moves it to C, a key of the new set")
	assert.Equal(t, StateExhausted, tr.Keys()[1].State, "the verdict on B reaches B in the new set")
	assert.Equal(t, 1, p.count(keyC))
}

func TestSetKeysIsChecked(t *testing.T) {
	tr := newTransport(t, []string{keyA, keyB}, WithTiers(0, 1))
	for _, tc := range []struct {
		name string
		keys []string
		opts []KeyOption
		want string
	}{
		{name: "no keys", keys: nil, want: "no keys"},
		{name: "bad key", keys: []string{keyA, "sk bad"}, want: "key 1 "},
		{name: "duplicate", keys: []string{keyA, keyA}, want: "key 1 "},
		{name: "tiers kept but no longer one per key", keys: []string{keyA, keyB, keyC},
			want: "WithTiers: 2 values for 3 keys (SetKeys keeps a KeyOption it is not given)"},
		{name: "weights", keys: []string{keyA, keyB}, opts: []KeyOption{WithWeights(1, -1)}, want: "not positive"},
		{name: "nil", keys: []string{keyA, keyB}, opts: []KeyOption{nil}, want: "nil KeyOption"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tr.SetKeys(tc.keys, tc.opts...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "sk bad")
			assert.Len(t, tr.Keys(), 2, "nothing changed")
		})
	}
	require.NoError(t, tr.SetKeys([]string{keyC, keyA, keyB}, WithTiers(1, 0, 0)))
	p := newProvider(t, nil)
	get(t, tr, p.URL)
	get(t, tr, p.URL)
	assert.Zero(t, p.count(keyC), "the new tiers hold")
	var zero Transport
	assert.ErrorIs(t, zero.SetKeys([]string{keyA}), errNotNew)
}

// A pinned request follows its key's label to the key's new place.
func TestPinFollowsTheKeyAcrossSetKeys(t *testing.T) {
	p := newProvider(t, nil)
	tr := newTransport(t, []string{keyA, keyB})
	label := tr.Keys()[1].Label
	require.NoError(t, tr.SetKeys([]string{keyC, keyD, keyB}))
	resp, err := send(t, tr, Pin(context.Background(), label), p.URL)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, []string{keyB}, p.keys())
	require.NoError(t, tr.SetKeys([]string{keyC}))
	_, err = send(t, tr, Pin(context.Background(), label), p.URL)
	var pinned *PinnedKeyError
	require.ErrorAs(t, err, &pinned, "a removed key's label names no key")
}

// A key added while the store says it is dead is never sent: its stored
// state is loaded before it serves. A key that stays is watched still.
func TestSetKeysLoadsTheStoredStateOfNewKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		p := newMemProvider(revokesKeyA)
		a := storeTransport(t, store, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst))
		b := storeTransport(t, store, []string{keyB}, WithBase(p), WithStrategy(FillFirst))
		get(t, a, p.URL)
		synctest.Wait()
		require.Equal(t, StateDead, a.Keys()[0].State)

		require.NoError(t, b.SetKeys([]string{keyA, keyB}))
		assert.Equal(t, StateDead, b.Keys()[0].State, "known dead before it serves")
		get(t, b, p.URL)
		assert.Equal(t, 1, p.count(keyA))

		a.ResetKey(1)
		synctest.Wait()
		assert.Equal(t, uint64(1), b.pool().slots[1].epoch, "B's watch follows its new keys")
	})
}

// BenchmarkSetKeys measures a swap of a 1,000-key pool that keeps 999 keys.
func BenchmarkSetKeys(b *testing.B) {
	keys := make([]string, 1001)
	for i := range keys {
		keys[i] = fmt.Sprintf("sk-bench-%032d", i)
	}
	tr, err := New(keys[:1000])
	require.NoError(b, err)
	var n atomic.Int64
	for b.Loop() {
		i := n.Add(1) % 2
		if err := tr.SetKeys(keys[i : i+1000]); err != nil {
			b.Fatal(err)
		}
	}
}

// A request waiting for a cooling key keeps waiting while the keys are
// swapped over and over: each swap wakes it, and none of those wakes uses up
// its bound on looking again (the chaos soak found this).
func TestWaitOutlastsManySwaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newMemProvider(func(key string, n int) reply {
			if n == 1 {
				return reply{status: 429, header: map[string]string{"Retry-After": "10"}, body: bodyRateLimit}
			}
			return reply{status: 200, body: "ok"}
		})
		tr := newTransport(t, []string{keyA}, WithBase(p), WithMaxWait(time.Minute))
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					assert.NoError(t, tr.SetKeys([]string{keyA}))
				}
			}
		}()
		start := time.Now()
		status, _ := get(t, tr, p.URL)
		close(stop)
		assert.Equal(t, 200, status)
		assert.Equal(t, 10*time.Second, time.Since(start), "woken 100 times, served when the key came back")
	})
}
