package credpool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordMerge(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ok0 := Record{Fingerprint: "k", State: StateOK, Epoch: 0}
	dead0 := Record{Fingerprint: "k", State: StateDead, Reason: ReasonAuthPermanent, Epoch: 0}
	ok1 := Record{Fingerprint: "k", State: StateOK, Epoch: 1}
	soon := Record{Fingerprint: "k", State: StateExhausted, Reason: ReasonRateLimit, ResetAt: now.Add(time.Minute)}
	late := Record{Fingerprint: "k", State: StateExhausted, Reason: ReasonBilling, ResetAt: now.Add(time.Hour)}
	disabled1 := Record{Fingerprint: "k", State: StateDisabled, Epoch: 1}
	ok2 := Record{Fingerprint: "k", State: StateOK, Epoch: 2}
	cases := []struct {
		name string
		a, b Record
		want Record
	}{
		{name: "dead beats ok", a: ok0, b: dead0, want: dead0},
		{name: "a stale ok never resurrects a dead key", a: dead0, b: ok0, want: dead0},
		{name: "a newer Reset beats dead", a: dead0, b: ok1, want: ok1},
		{
			name: "dead after the Reset beats it",
			a:    ok1,
			b:    Record{Fingerprint: "k", State: StateDead, Epoch: 1},
			want: Record{Fingerprint: "k", State: StateDead, Epoch: 1},
		},
		{name: "cooldowns merge to the later", a: soon, b: late, want: late},
		{name: "cooldowns merge to the later, either order", a: late, b: soon, want: late},
		{name: "a cooldown beats ok", a: ok0, b: soon, want: soon},
		{name: "dead beats a cooldown", a: late, b: dead0, want: dead0},
		{name: "a disable beats dead", a: dead0, b: disabled1, want: disabled1},
		{name: "dead in the disable's epoch does not undo it", a: disabled1, b: Record{Fingerprint: "k", State: StateDead, Epoch: 1}, want: disabled1},
		{name: "an enable beats the disable", a: disabled1, b: ok2, want: ok2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.a.Merge(tc.b))
		})
	}
}

// TestRecordMergeLaws checks that replicas that see the same records in any
// order agree: Merge is commutative, associative and idempotent.
func TestRecordMergeLaws(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	states := []State{StateOK, StateExhausted, StateDead, StateDisabled}
	reasons := []Reason{"", ReasonRateLimit, ReasonBilling, ReasonAuthPermanent}
	random := func() Record {
		r := Record{Fingerprint: "k", State: states[rng.IntN(len(states))], Reason: reasons[rng.IntN(4)], Epoch: uint64(rng.IntN(3))}
		if r.State == StateExhausted {
			r.ResetAt = base.Add(time.Duration(rng.IntN(4)) * time.Minute)
		}
		return r
	}
	for i := 0; i < 5000; i++ {
		a, b, c := random(), random(), random()
		require.Equal(t, a.Merge(b), b.Merge(a), "commutative: %+v %+v", a, b)
		require.Equal(t, a.Merge(b).Merge(c), a.Merge(b.Merge(c)), "associative")
		require.Equal(t, a, a.Merge(a), "idempotent")
	}
}

func TestFingerprint(t *testing.T) {
	a := Fingerprint(defaultSalt, keyA)
	assert.Len(t, a, 32)
	assert.Equal(t, a, Fingerprint(defaultSalt, keyA), "stable, so replicas agree")
	assert.NotEqual(t, a, Fingerprint(defaultSalt, keyB))
	assert.NotEqual(t, a, Fingerprint([]byte("other salt"), keyA))
	assert.NotContains(t, a, keyA[len(keyA)-4:])
}

// memStore is a Store in memory that any number of Transports share, with
// switches to make it fail or stall.
type memStore struct {
	mu       sync.Mutex
	records  map[string]Record
	watchers map[chan Record]bool
	saves    atomic.Int64
	down     atomic.Bool
	stall    chan struct{} // while non-nil, Save waits on it
}

func newMemStore() *memStore {
	return &memStore{records: map[string]Record{}, watchers: map[chan Record]bool{}}
}

var errStoreDown = errors.New("store down")

func (m *memStore) Save(ctx context.Context, r Record) error {
	m.saves.Add(1)
	m.mu.Lock()
	stall := m.stall
	m.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if m.down.Load() {
		return errStoreDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.records[r.Fingerprint]; ok {
		r = old.Merge(r)
	}
	m.records[r.Fingerprint] = r
	for w := range m.watchers {
		select {
		case w <- r:
		default: // a slow watcher catches up on its next Watch
		}
	}
	return nil
}

func (m *memStore) Load(ctx context.Context, keys []string) ([]Record, error) {
	if m.down.Load() {
		return nil, errStoreDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Record
	for _, k := range keys {
		if r, ok := m.records[k]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// put stores r as it is, unmerged and unchecked: a record as a hostile or
// broken writer would leave it.
func (m *memStore) put(r Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records[r.Fingerprint] = r
}

func (m *memStore) Watch(ctx context.Context, keys []string, apply func(Record)) error {
	if m.down.Load() {
		return errStoreDown
	}
	w := make(chan Record, 1024)
	m.mu.Lock()
	m.watchers[w] = true
	all := make([]Record, 0, len(keys))
	for _, k := range keys {
		if r, ok := m.records[k]; ok {
			all = append(all, r)
		}
	}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.watchers, w)
		m.mu.Unlock()
	}()
	for _, r := range all {
		apply(r)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-w:
			apply(r)
		case <-tick.C:
			if m.down.Load() {
				return errStoreDown
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *memStore) get(key string) (Record, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[Fingerprint(defaultSalt, key)]
	return r, ok
}

// storeTransport builds a Transport on store that is closed with the test.
func storeTransport(t *testing.T, store Store, keys []string, opts ...Option) *Transport {
	t.Helper()
	tr := newTransport(t, keys, append([]Option{WithStore(store)}, opts...)...)
	t.Cleanup(func() { tr.Close() })
	return tr
}

// The tests of sharing run inside synctest.Test, as the tests of waiting do
// (wait_test.go), with the provider in memory: synctest.Wait returns once the
// replicas' writers and watchers have nothing left to do, so each step is
// seen whole, and time.Sleep moves the fake clock to a retry or a resync at
// once.

func TestSharedKillReachesOtherReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		p := newMemProvider(revokesKeyA)
		a := storeTransport(t, store, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst))
		b := storeTransport(t, store, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst))
		start := time.Now()
		get(t, a, p.URL)
		require.Equal(t, StateDead, a.Keys()[0].State)
		synctest.Wait() // a's writer has saved the kill, b's watch has applied it
		require.Equal(t, StateDead, b.Keys()[0].State, "replica B learns of the kill without failing a request")
		assert.Equal(t, ReasonAuthPermanent, b.Keys()[0].Reason)
		assert.Zero(t, time.Since(start), "at once, through the watch, not at the next resync")
		get(t, b, p.URL)
		assert.Equal(t, 1, p.count(keyA), "replica B never sends the dead key")
	})
}

func TestSharedCooldownAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		a := storeTransport(t, store, []string{keyA, keyB})
		b := storeTransport(t, store, []string{keyA, keyB})
		l, _, _ := a.pool().acquire(-1, time.Now)
		now := time.Now().Round(0)
		until := now.Add(time.Hour)
		changes := a.pool().fail(l, verdict{reason: ReasonBilling, hint: time.Hour, hinted: true}, 429, now)
		change, ok := changes[0], len(changes) == 1
		require.True(t, ok, "%+v", change)
		synctest.Wait()
		require.Equal(t, StateExhausted, b.Keys()[l.index].State)
		assert.True(t, until.Equal(b.Keys()[l.index].ResetAt), "the same deadline")

		b.Reset()
		synctest.Wait()
		assert.Equal(t, StateOK, a.Keys()[l.index].State, "a Reset is an event: it revives the key everywhere")
		assert.Zero(t, time.Since(now), "both at once, through the watch")
	})
}

func TestStaleWriteDoesNotResurrect(t *testing.T) {
	store := newMemStore()
	fp := Fingerprint(defaultSalt, keyA)
	require.NoError(t, store.Save(context.Background(), Record{Fingerprint: fp, State: StateDead, Reason: ReasonAuthPermanent}))
	require.NoError(t, store.Save(context.Background(), Record{Fingerprint: fp, State: StateOK}))
	r, _ := store.get(keyA)
	assert.Equal(t, StateDead, r.State)
}

func TestNoStoreCallsOnSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		p := newMemProvider(nil)
		tr := storeTransport(t, store, []string{keyA, keyB}, WithBase(p))
		for i := 0; i < 50; i++ {
			get(t, tr, p.URL)
		}
		synctest.Wait() // a save, had one been queued, would have been made
		assert.Zero(t, store.saves.Load())
	})
}

func TestStoreDownOrSlowNeverBlocksRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		store.mu.Lock()
		store.stall = make(chan struct{})
		store.mu.Unlock()
		var logs syncBuffer
		p := newMemProvider(revokesKeyA)
		tr := storeTransport(t, store, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst),
			WithLogger(newTestLogger(&logs)))

		start := time.Now()
		status, _ := get(t, tr, p.URL) // kills keyA: its Save stalls
		assert.Equal(t, 200, status)
		assert.Zero(t, time.Since(start), "a stalled store does not hold up the request")
		synctest.Wait()
		require.Equal(t, int64(1), store.saves.Load(), "the kill's save is under way")
		_, saved := store.get(keyA)
		require.False(t, saved, "and stalled")

		store.down.Store(true)
		store.mu.Lock()
		close(store.stall) // the stalled Save now fails
		store.stall = nil
		store.mu.Unlock()
		for i := 0; i < 5; i++ {
			status, _ := get(t, tr, p.URL)
			assert.Equal(t, 200, status, "requests flow on local state")
		}
		synctest.Wait()
		assert.Equal(t, 1, strings.Count(logs.String(), "store unavailable"))
		h, _ := tr.StoreHealth()
		assert.False(t, h.Up)

		// A minute's outage: the writer retries, the watch starts over, a
		// resync fails, and none of them logs again.
		time.Sleep(time.Minute)
		store.down.Store(false)
		time.Sleep(storeRetry) // the longest pause between the writer's attempts
		synctest.Wait()
		r, ok := store.get(keyA)
		require.True(t, ok, "the kill reaches the store once it returns")
		assert.Equal(t, StateDead, r.State)
		assert.Equal(t, 1, strings.Count(logs.String(), "store unavailable"), "logged once per outage")
		assert.Equal(t, 1, strings.Count(logs.String(), "store available again"))
		h, _ = tr.StoreHealth()
		assert.True(t, h.Up)
	})
}

// TestRestartKeepsDeadKeyDead runs in a bubble too: the FileStore's waits
// (its watch's polling, the lock's retries) are timers, and file I/O is no
// goroutine's durable block, so synctest.Wait waits for it.
func TestRestartKeepsDeadKeyDead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		store, err := NewFileStore(path)
		require.NoError(t, err)
		p := newMemProvider(revokesKeyA)
		first := storeTransport(t, store, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst))
		get(t, first, p.URL)
		require.NoError(t, first.Close())

		data, err := os.ReadFile(path)
		require.NoError(t, err)
		assertNoSecret(t, "state file", string(data), keyA, keyB)

		store2, err := NewFileStore(path)
		require.NoError(t, err)
		second := storeTransport(t, store2, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst))
		require.Equal(t, StateDead, second.Keys()[0].State, "loaded in New, before the first request")
		get(t, second, p.URL)
		assert.Equal(t, 1, p.count(keyA), "after the restart the dead key is never sent")
	})
}

func TestFileStoreRefusesCorruptAndForeignFiles(t *testing.T) {
	for name, content := range map[string]string{
		"corrupt":  `{"format":"credpool/v1","records":{`,
		"foreign":  `{"name":"some other program's config"}`,
		"not JSON": "key=value\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
			_, err := NewFileStore(path)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "credpool: file store "+path), err.Error())
			data, _ := os.ReadFile(path)
			assert.Equal(t, content, string(data), "nothing lost")
		})
	}
	_, err := NewFileStore(filepath.Join(t.TempDir(), "missing-dir", "state.json"))
	assert.Error(t, err)
}

func TestFileStoreTurnsCorruptWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	store, err := NewFileStore(path)
	require.NoError(t, err)
	require.NoError(t, store.Save(context.Background(), Record{Fingerprint: "a", State: StateDead}))
	require.NoError(t, os.WriteFile(path, []byte("garbage"), 0o600))
	err = store.Save(context.Background(), Record{Fingerprint: "b", State: StateDead})
	assert.ErrorContains(t, err, "corrupt")
	data, _ := os.ReadFile(path)
	assert.Equal(t, "garbage", string(data), "a corrupt file is not overwritten")
}

// TestFileStoreTwoProcesses runs this test binary twice more, as two
// processes saving to one file at once, and checks that no save was lost.
func TestFileStoreTwoProcesses(t *testing.T) {
	if os.Getenv("CREDPOOL_FILESTORE_WRITER") != "" {
		fileStoreWriter(t)
		return
	}
	path := filepath.Join(t.TempDir(), "state.json")
	const perProcess = 40
	var cmds []*exec.Cmd
	var outputs []*bytes.Buffer
	for w := 0; w < 2; w++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileStoreTwoProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CREDPOOL_FILESTORE_WRITER="+strconv.Itoa(w), "CREDPOOL_FILESTORE_PATH="+path,
			"CREDPOOL_FILESTORE_N="+strconv.Itoa(perProcess))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		cmds, outputs = append(cmds, cmd), append(outputs, &out)
	}
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), outputs[i].String())
	}
	store, err := NewFileStore(path)
	require.NoError(t, err)
	records, err := store.read()
	require.NoError(t, err)
	assert.Len(t, records, 2*perProcess, "every save of both processes is in the file")
}

// fileStoreWriter is one of the two processes of TestFileStoreTwoProcesses.
func fileStoreWriter(t *testing.T) {
	store, err := NewFileStore(os.Getenv("CREDPOOL_FILESTORE_PATH"))
	require.NoError(t, err)
	n, _ := strconv.Atoi(os.Getenv("CREDPOOL_FILESTORE_N"))
	w := os.Getenv("CREDPOOL_FILESTORE_WRITER")
	for i := 0; i < n; i++ {
		r := Record{Fingerprint: fmt.Sprintf("w%s-%d", w, i), State: StateExhausted, Reason: ReasonRateLimit, ResetAt: time.Now().Add(time.Minute)}
		require.NoError(t, store.Save(context.Background(), r))
	}
}

func TestSharedThroughFileStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		sa, err := NewFileStore(path)
		require.NoError(t, err)
		sb, err := NewFileStore(path)
		require.NoError(t, err)
		p := newMemProvider(func(key string, _ int) reply {
			if key == keyA {
				return reply{status: 429, header: map[string]string{"Retry-After": "600"}, body: bodyRateLimit}
			}
			return reply{status: 200, body: "ok"}
		})
		a := storeTransport(t, sa, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst))
		b := storeTransport(t, sb, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst))
		start := time.Now()
		get(t, a, p.URL)
		require.Equal(t, StateExhausted, a.Keys()[0].State)
		assert.True(t, start.Add(10*time.Minute).Equal(a.Keys()[0].ResetAt), "Retry-After: 600")
		time.Sleep(sb.poll) // b's watch reads the file again
		synctest.Wait()
		require.Equal(t, StateExhausted, b.Keys()[0].State)
		assert.True(t, a.Keys()[0].ResetAt.Equal(b.Keys()[0].ResetAt), "the same deadline: %v and %v",
			a.Keys()[0].ResetAt, b.Keys()[0].ResetAt)
		var _ http.RoundTripper = b
	})
}

func TestStoreThatLostItsStateIsToldAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		p := newMemProvider(revokesKeyA)
		tr := storeTransport(t, store, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst))
		get(t, tr, p.URL)
		synctest.Wait()
		_, ok := store.get(keyA)
		require.True(t, ok, "the kill is saved")

		// The store goes away and comes back empty, as a Redis without
		// persistence does. The pool notices at its next resync (every
		// 30 s), and says again what it knows once the store answers.
		store.down.Store(true)
		time.Sleep(time.Minute)
		store.mu.Lock()
		store.records = map[string]Record{}
		store.mu.Unlock()
		store.down.Store(false)
		time.Sleep(time.Minute)
		synctest.Wait()
		r, ok := store.get(keyA)
		require.True(t, ok, "the pool says again what it knows")
		assert.Equal(t, StateDead, r.State)
	})
}
