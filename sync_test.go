package credpool

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// restartStore is a store file as the last process left it: key A dead, key
// B cooling for an hour, key C fine.
func restartStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.json")
	store, err := NewFileStore(path)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, store.Save(ctx, Record{Fingerprint: Fingerprint(defaultSalt, keyA), State: StateDead, Reason: ReasonAuthPermanent}))
	require.NoError(t, store.Save(ctx, Record{Fingerprint: Fingerprint(defaultSalt, keyB), State: StateExhausted,
		Reason: ReasonRateLimit, ResetAt: time.Now().Add(time.Hour)}))
	return path
}

// TestRestartNeverSendsKnownBadKeys is a fleet's deploy, ten times over: a
// process starts on a store that holds a dead and a cooling key, and takes
// traffic at once. Neither key is ever sent.
func TestRestartNeverSendsKnownBadKeys(t *testing.T) {
	path := restartStore(t)
	p := newProvider(t, nil)
	for range 10 {
		store, err := NewFileStore(path)
		require.NoError(t, err)
		tr := storeTransport(t, store, []string{keyA, keyB, keyC})
		getConcurrently(t, tr, p.URL, 20)
		require.NoError(t, tr.Close())
	}
	assert.Zero(t, p.count(keyA), "the dead key was sent")
	assert.Zero(t, p.count(keyB), "the cooling key was sent")
	assert.Equal(t, 200, p.count(keyC))
}

// TestStoreDownAtStart: a store that cannot be read does not stop a service
// from starting. New returns within WithStoreLoadTimeout with a working
// Transport, logs why, and the first request after the store comes back
// sees the stored states.
func TestStoreDownAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		store.put(Record{Fingerprint: Fingerprint(defaultSalt, keyA), State: StateDead, Reason: ReasonAuthPermanent})
		store.down.Store(true)
		var logs syncBuffer
		start := time.Now()
		tr := storeTransport(t, store, []string{keyA, keyB}, WithStoreLoadTimeout(100*time.Millisecond),
			WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		assert.Zero(t, time.Since(start), "a store that fails at once is not waited on for the load timeout")
		assert.Contains(t, logs.String(), "stored key states not loaded")
		h, ok := tr.StoreHealth()
		require.True(t, ok)
		assert.False(t, h.Up)
		assert.False(t, h.Loaded)
		assert.Equal(t, StateOK, tr.Keys()[0].State, "on its own state meanwhile")

		synctest.Wait() // the watch has tried again, and pauses before the next try
		h, _ = tr.StoreHealth()
		assert.False(t, h.Loaded)
		store.down.Store(false)
		time.Sleep(storeRetryMin)
		synctest.Wait()
		h, _ = tr.StoreHealth()
		assert.True(t, h.Loaded, "loaded at the watch's next try")
		assert.True(t, h.Up)
		assert.Equal(t, StateDead, tr.Keys()[0].State)
		assert.WithinDuration(t, start.Add(storeRetryMin), h.LastSync, 0)
	})
}

// TestStoreHealth: Up follows the store's answers, and LastSync stays fresh
// while it answers, through the periodic load every 30 s.
func TestStoreHealth(t *testing.T) {
	_, ok := newTransport(t, []string{keyA}).StoreHealth()
	assert.False(t, ok, "no store, no health")

	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		start := time.Now()
		tr := storeTransport(t, store, []string{keyA})
		resync := tr.cfg.storeResync
		require.Equal(t, 30*time.Second, resync, "the default")
		h, _ := tr.StoreHealth()
		assert.True(t, h.Up)
		assert.True(t, h.Loaded, "loaded in New")
		assert.WithinDuration(t, start, h.LastSync, 0)

		// One resync per step: the store's health after it, and when the
		// store last answered.
		steps := []struct {
			down     bool
			up       bool
			lastSync time.Duration // after start
			why      string
		}{
			{up: true, lastSync: resync, why: "the periodic load"},
			{down: true, lastSync: resync, why: "down by the next load at the latest; its last answer stays"},
			{up: true, lastSync: 3 * resync, why: "up again by the next load at the latest"},
		}
		for _, step := range steps {
			store.down.Store(step.down)
			time.Sleep(resync)
			synctest.Wait()
			h, _ = tr.StoreHealth()
			assert.Equal(t, step.up, h.Up, step.why)
			assert.WithinDuration(t, start.Add(step.lastSync), h.LastSync, 0, step.why)
		}
	})
}

// TestHostileRecordsAreContained: what a store holds is checked and bounded
// before it changes a key.
func TestHostileRecordsAreContained(t *testing.T) {
	fpA := Fingerprint(defaultSalt, keyA)
	t.Run("an absurd epoch is refused", func(t *testing.T) {
		store := newMemStore()
		store.put(Record{Fingerprint: fpA, State: StateDead, Reason: ReasonAuthPermanent, Epoch: math.MaxUint64})
		tr := storeTransport(t, store, []string{keyA, keyB})
		assert.Equal(t, StateOK, tr.Keys()[0].State)
		require.NoError(t, tr.ResetKey(0))
		assert.Equal(t, uint64(1), tr.pool().slots[0].epoch)
	})
	t.Run("resets saturate", func(t *testing.T) {
		tr := newTransport(t, []string{keyA})
		tr.pool().slots[0].epoch = maxEpoch
		require.NoError(t, tr.ResetKey(0))
		assert.Equal(t, uint64(maxEpoch), tr.pool().slots[0].epoch)
	})
	t.Run("a cooldown past WithMaxCooldown is clamped", func(t *testing.T) {
		store := newMemStore()
		store.put(Record{Fingerprint: fpA, State: StateExhausted, Reason: ReasonBilling, ResetAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)})
		tr := storeTransport(t, store, []string{keyA, keyB}, WithMaxCooldown(time.Hour))
		s := tr.Keys()[0]
		assert.Equal(t, StateExhausted, s.State)
		assert.WithinDuration(t, time.Now().Add(time.Hour), s.ResetAt, time.Minute)
	})
	t.Run("an unknown state is refused", func(t *testing.T) {
		store := newMemStore()
		store.put(Record{Fingerprint: fpA, State: "zombie"})
		var logs syncBuffer
		tr := storeTransport(t, store, []string{keyA, keyB}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		assert.Equal(t, StateOK, tr.Keys()[0].State)
		assert.Contains(t, logs.String(), `unknown state \"zombie\"`)
		p := newProvider(t, nil)
		get(t, tr, p.URL)
		get(t, tr, p.URL)
		assert.Equal(t, 1, p.count(keyA), "in rotation, as Keys says")
	})
	t.Run("a file store skips a bad record and loads the rest", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		fpB := Fingerprint(defaultSalt, keyB)
		content := `{"format":"` + fileFormatName + `","records":{` +
			`"` + fpA + `":{"fingerprint":"` + fpA + `","state":"zombie","epoch":0},` +
			`"` + fpB + `":{"fingerprint":"` + fpB + `","state":"dead","reason":"auth_permanent","epoch":0}}}`
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		store, err := NewFileStore(path)
		require.NoError(t, err)
		records, err := store.Load(context.Background(), []string{fpA, fpB})
		assert.ErrorIs(t, err, ErrCorruptRecord)
		assert.ErrorContains(t, err, `unknown state "zombie"`)
		require.Len(t, records, 1)
		assert.Equal(t, fpB, records[0].Fingerprint)
		tr := storeTransport(t, store, []string{keyA, keyB})
		assert.Equal(t, []State{StateOK, StateDead}, []State{tr.Keys()[0].State, tr.Keys()[1].State})
	})
}

// TestRemoteKillsCountTowardTheBurst: with a wrong base URL deployed to a
// fleet, every key is rejected on every replica. A kill learnt from another
// replica counts toward this one's burst, as a local kill does, so the
// outage guard keeps the last key cooling wherever it is met, and the store
// never holds every key dead. Each request here makes one attempt (its body
// cannot be replayed), so the replicas take turns.
func TestRemoteKillsCountTowardTheBurst(t *testing.T) {
	synctest.Test(t, testRemoteKillsCountTowardTheBurst)
}

// testRemoteKillsCountTowardTheBurst runs on synctest's fake clock, with the
// provider in memory: synctest.Wait returns once the replicas' syncers have
// nothing left to do, so each step is seen whole, with no polling.
func testRemoteKillsCountTowardTheBurst(t *testing.T) {
	store := newMemStore()
	p := newMemProvider(func(string, int) reply { return reply{status: 401, body: bodyInvalidKey} })
	keys := []string{keyA, keyB, keyC}
	opts := []Option{WithBase(p), WithStrategy(FillFirst), WithMaxWait(0), WithMaxReplayBody(0)}
	one, two := storeTransport(t, store, keys, opts...), storeTransport(t, store, keys, opts...)
	send := func(tr *Transport) {
		req, err := http.NewRequest(http.MethodPost, p.URL, io.NopCloser(strings.NewReader("{}")))
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	dead := func(tr *Transport) int {
		synctest.Wait() // every change saved, and heard by the other replica
		n := 0
		for _, s := range tr.Keys() {
			if s.State == StateDead {
				n++
			}
		}
		return n
	}
	send(one) // A dies
	require.Equal(t, 1, dead(two))
	send(two) // B dies
	require.Equal(t, 2, dead(one))
	send(one) // C: the last key alive, every other dead since the last success
	synctest.Wait()
	for name, tr := range map[string]*Transport{"one": one, "two": two} {
		c := tr.Keys()[2]
		assert.NotEqual(t, StateDead, c.State, "%s: the last key died", name)
	}
	r, _ := store.get(keyC)
	assert.NotEqual(t, StateDead, r.State, "the store holds every key dead")
}

// TestRemoteResetWakesWaiters: a key revived on another replica wakes the
// requests here that wait for one, instead of leaving them to wait out a
// cooldown that no longer holds.
func TestRemoteResetWakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		var mu sync.Mutex
		limited := true
		p := newMemProvider(func(string, int) reply {
			mu.Lock()
			defer mu.Unlock()
			if limited {
				return reply{status: 429, header: map[string]string{"Retry-After": "600"}, body: bodyRateLimit}
			}
			return reply{status: 200, body: "ok"}
		})
		one := storeTransport(t, store, []string{keyA}, WithBase(p))
		two := storeTransport(t, store, []string{keyA}, WithBase(p), WithMaxWait(time.Hour))
		get(t, one, p.URL) // A cools for 10 minutes, here and on two
		synctest.Wait()
		require.Equal(t, StateExhausted, two.Keys()[0].State)

		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel) // never hang the suite on a waiter nobody wakes
		done := make(chan int, 1)
		go func() {
			req := httptestRequest(t, p.URL).WithContext(ctx) // no deadline: one would end the wait at once
			resp, err := two.RoundTrip(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		synctest.Wait()
		require.Equal(t, uint64(1), two.Stats().Waits, "two waits")
		mu.Lock()
		limited = false
		mu.Unlock()
		start := time.Now()
		require.NoError(t, one.ResetKey(0))
		assert.Equal(t, 200, <-done)
		assert.Zero(t, time.Since(start), "woken by the reset, not by the cooldown's end")
	})
}

// TestStateChangesFromTheStore: OnStateChange hears of changes learnt from
// the store as well as local ones.
func TestStateChangesFromTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		var mu sync.Mutex
		var heard []StateChange
		p := newMemProvider(revokesKeyA)
		one := storeTransport(t, store, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst))
		storeTransport(t, store, []string{keyA, keyB}, WithOnStateChange(func(c StateChange) {
			mu.Lock()
			heard = append(heard, c)
			mu.Unlock()
		}))
		get(t, one, p.URL)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, heard, 1)
		assert.Equal(t, StateDead, heard[0].To)
		assert.Equal(t, ReasonAuthPermanent, heard[0].Reason)
		assert.Equal(t, 0, heard[0].Index)
	})
}
