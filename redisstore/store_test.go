package redisstore

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder runs store.Watch until the test ends and keeps what it applies.
type recorder struct {
	mu      sync.Mutex
	records []credpool.Record
}

func (r *recorder) all() []credpool.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]credpool.Record(nil), r.records...)
}

// last returns the last record applied for each key.
func (r *recorder) last() map[string]credpool.Record {
	out := map[string]credpool.Record{}
	for _, rec := range r.all() {
		out[rec.Fingerprint] = rec
	}
	return out
}

// watch starts a watch on store of the records of keys and returns once it
// has loaded them: whatever is saved from then on reaches it as a message.
func watch(t *testing.T, store *Store, keys ...string) *recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	done := make(chan error, 1)
	loaded := make(chan struct{}, 1)
	store.loaded = func() {
		select {
		case loaded <- struct{}{}:
		default:
		}
	}
	go func() {
		done <- store.Watch(ctx, keys, func(r credpool.Record) {
			rec.mu.Lock()
			rec.records = append(rec.records, r)
			rec.mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled, "a watch ends with its context")
	})
	select {
	case <-loaded:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not load in time")
	}
	return rec
}

func pttl(t *testing.T, c redis.UniversalClient, key string) int64 {
	t.Helper()
	n, err := c.Do(context.Background(), "PTTL", key).Int64()
	require.NoError(t, err)
	return n
}

// TestSaveMergesLikeRecordMerge runs the table of the core's TestRecordMerge
// through Redis: what is stored, and what is published, is a.Merge(b).
func TestSaveMergesLikeRecordMerge(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr())
	ctx := context.Background()
	// The core's table, but with cooldowns that end in the future: one that
	// has ended expires from Redis at once (TestCooldownRecordsExpire).
	now := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
	ok0 := credpool.Record{Fingerprint: "k", State: credpool.StateOK, Epoch: 0}
	dead0 := credpool.Record{Fingerprint: "k", State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent, Epoch: 0}
	ok1 := credpool.Record{Fingerprint: "k", State: credpool.StateOK, Epoch: 1}
	soon := credpool.Record{Fingerprint: "k", State: credpool.StateExhausted, Reason: credpool.ReasonRateLimit, ResetAt: now.Add(time.Minute)}
	late := credpool.Record{Fingerprint: "k", State: credpool.StateExhausted, Reason: credpool.ReasonBilling, ResetAt: now.Add(time.Hour)}
	disabled1 := credpool.Record{Fingerprint: "k", State: credpool.StateDisabled, Epoch: 1}
	ok2 := credpool.Record{Fingerprint: "k", State: credpool.StateOK, Epoch: 2}
	cases := []struct {
		name string
		a, b credpool.Record
		want credpool.Record
	}{
		{"dead beats ok", ok0, dead0, dead0},
		{"a stale ok never resurrects a dead key", dead0, ok0, dead0},
		{"a newer Reset beats dead", dead0, ok1, ok1},
		{"dead after the Reset beats it", ok1, credpool.Record{Fingerprint: "k", State: credpool.StateDead, Epoch: 1}, credpool.Record{Fingerprint: "k", State: credpool.StateDead, Epoch: 1}},
		{"cooldowns merge to the later", soon, late, late},
		{"cooldowns merge to the later, either order", late, soon, late},
		{"a cooldown beats ok", ok0, soon, soon},
		{"dead beats a cooldown", late, dead0, dead0},
		{"a disable beats dead", dead0, disabled1, disabled1},
		{"dead in the disable's epoch does not undo it", disabled1, credpool.Record{Fingerprint: "k", State: credpool.StateDead, Epoch: 1}, disabled1},
		{"an enable beats the disable", disabled1, ok2, ok2},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.a.Merge(tc.b), "the table agrees with the core")
			ns := fmt.Sprintf("merge%d", i)
			store := New(client, WithNamespace(ns))
			rec := watch(t, store, "k")
			require.NoError(t, store.Save(ctx, tc.a))
			require.NoError(t, store.Save(ctx, tc.b))
			got, ok := stored(t, client, ns, "k")
			require.True(t, ok)
			assert.Equal(t, tc.want, got, "stored")
			require.Eventually(t, func() bool { return len(rec.all()) == 2 }, 2*time.Second, time.Millisecond)
			assert.Equal(t, []credpool.Record{tc.a, tc.want}, rec.all(), "each save publishes the merged record")
		})
	}
}

// TestMergeLawsThroughRedis checks the script against Record.Merge on
// random records, with the cases a double or Lua's < would get wrong: epochs
// of different lengths up to maxEpoch, reset times a nanosecond apart,
// reasons that differ in one byte.
func TestMergeLawsThroughRedis(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr())
	store := New(client)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	base := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	states := []credpool.State{credpool.StateOK, credpool.StateExhausted, credpool.StateDead}
	reasons := []credpool.Reason{"", credpool.ReasonRateLimit, credpool.ReasonBilling, credpool.ReasonAuth, credpool.ReasonAuthPermanent}
	epochs := []uint64{0, 1, 2, 9, 10, 99, 100, 1 << 31, maxEpoch - 1, maxEpoch}
	random := func(key string) credpool.Record {
		r := credpool.Record{Fingerprint: key, State: states[rng.IntN(3)], Reason: reasons[rng.IntN(len(reasons))], Epoch: epochs[rng.IntN(len(epochs))]}
		if rng.IntN(4) > 0 {
			r.ResetAt = base.Add(time.Duration(rng.IntN(3))*time.Minute + time.Duration(rng.IntN(3)))
		}
		return r
	}
	for i := 0; i < 1500; i++ {
		key := fmt.Sprintf("law%d", i)
		a, b, c := random(key), random(key), random(key)
		for _, r := range []credpool.Record{a, b, c} {
			require.NoError(t, store.Save(ctx, r))
		}
		got, ok := stored(t, client, DefaultNamespace, key)
		require.True(t, ok)
		require.Equal(t, a.Merge(b).Merge(c), got, "saved %+v, %+v, %+v", a, b, c)
	}
}

// TestConcurrentSavesNeverLoseAKill has many replicas save many records of
// the same keys at once: every key ends dead, the merge of all it was sent,
// and the last record published of each key says so.
func TestConcurrentSavesNeverLoseAKill(t *testing.T) {
	srv := startRedis(t)
	const replicas, writersPerReplica, keys = 4, 8, 40
	stores := make([]*Store, replicas)
	for i := range stores {
		stores[i] = New(newClient(t, srv.addr()))
	}
	observer := newClient(t, srv.addr())
	var fps []string
	for k := 0; k < keys; k++ {
		fps = append(fps, fmt.Sprintf("fp%02d", k))
	}
	rec := watch(t, New(observer), fps...)
	future := time.Now().UTC().Add(time.Hour).Truncate(time.Millisecond)

	// Each writer gets its records for every key; one writer per key holds
	// the kill, at a random place among its cooldowns and oks.
	writers := replicas * writersPerReplica
	plan := make([][]credpool.Record, writers)
	want := map[string]credpool.Record{}
	rng := rand.New(rand.NewPCG(1, 2))
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("fp%02d", k)
		killer := rng.IntN(writers)
		for w := 0; w < writers; w++ {
			var mine []credpool.Record
			for j := 0; j < 3; j++ {
				r := credpool.Record{Fingerprint: key, State: credpool.StateOK}
				if rng.IntN(2) == 0 {
					r = credpool.Record{Fingerprint: key, State: credpool.StateExhausted, Reason: credpool.ReasonRateLimit,
						ResetAt: future.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)}
				}
				mine = append(mine, r)
			}
			if w == killer {
				mine[rng.IntN(len(mine))] = credpool.Record{Fingerprint: key, State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent}
			}
			for _, r := range mine {
				if prev, ok := want[key]; ok {
					r = prev.Merge(r)
				}
				want[key] = r
			}
			plan[w] = append(plan[w], mine...)
		}
	}
	for w := range plan {
		rng.Shuffle(len(plan[w]), func(i, j int) { plan[w][i], plan[w][j] = plan[w][j], plan[w][i] })
	}

	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(store *Store, records []credpool.Record) {
			defer wg.Done()
			<-start
			for _, r := range records {
				if err := store.Save(context.Background(), r); err != nil {
					errs <- err
					return
				}
			}
		}(stores[w%replicas], plan[w])
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for key, w := range want {
		require.Equal(t, credpool.StateDead, w.State)
		got, ok := stored(t, observer, DefaultNamespace, key)
		require.True(t, ok, key)
		assert.Equal(t, w, got, key)
	}
	require.Eventually(t, func() bool { return len(rec.all()) == writers*keys*3 }, 5*time.Second, time.Millisecond,
		"every save publishes")
	assert.Equal(t, want, rec.last(), "the last record published of each key is its merge")
}

func TestCooldownRecordsExpire(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr())
	ctx := context.Background()
	store := New(client, WithExpiryMargin(100*time.Millisecond))
	key := func(fp string) string { return "{credpool}:key:" + fp }

	reset := time.Now().Add(300 * time.Millisecond)
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "cool", State: credpool.StateExhausted, Reason: credpool.ReasonRateLimit, ResetAt: reset}))
	ttl := pttl(t, client, key("cool"))
	assert.True(t, ttl > 0 && ttl <= 400, "expires at the reset plus the margin: PTTL %d ms", ttl)
	records, err := store.Load(ctx, []string{"cool"})
	require.NoError(t, err)
	require.Len(t, records, 1, "loaded while it lasts")
	require.Eventually(t, func() bool { return client.Exists(ctx, key("cool")).Val() == 0 }, 2*time.Second, 10*time.Millisecond)
	assert.Less(t, time.Until(reset), time.Duration(0), "not before the reset")
	records, err = store.Load(ctx, []string{"cool"})
	require.NoError(t, err)
	assert.Empty(t, records, "an expired cooldown loads as no record: ok at epoch 0")
	assert.Zero(t, client.DBSize(ctx).Val(), "nothing of it is left in Redis")

	// A cooldown that has already ended is gone at once: it means "ok".
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "over", State: credpool.StateExhausted, ResetAt: time.Now().Add(-time.Hour)}))
	assert.Zero(t, client.Exists(ctx, key("over")).Val())

	// The default margin.
	require.NoError(t, New(client).Save(ctx, credpool.Record{Fingerprint: "default", State: credpool.StateExhausted, ResetAt: time.Now().Add(time.Minute)}))
	ttl = pttl(t, client, key("default"))
	assert.True(t, ttl > 69_000 && ttl <= 70_000, "a minute plus DefaultExpiryMargin: PTTL %d ms", ttl)

	// A later cooldown moves the expiry; an earlier one does not.
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "longer", State: credpool.StateExhausted, ResetAt: time.Now().Add(time.Minute)}))
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "longer", State: credpool.StateExhausted, ResetAt: time.Now().Add(time.Hour)}))
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "longer", State: credpool.StateExhausted, ResetAt: time.Now().Add(time.Second)}))
	assert.Greater(t, pttl(t, client, key("longer")), int64(59*time.Minute/time.Millisecond))

	// Nothing else expires: not a kill, even of a cooling key, nor anything
	// after a Reset.
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "killed", State: credpool.StateExhausted, ResetAt: time.Now().Add(time.Minute)}))
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "killed", State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent}))
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "cool1", State: credpool.StateExhausted, ResetAt: time.Now().Add(time.Minute), Epoch: 1}))
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "ok1", State: credpool.StateOK, Epoch: 1}))
	for _, fp := range []string{"killed", "cool1", "ok1"} {
		assert.Equal(t, int64(-1), pttl(t, client, key(fp)), "%s never expires", fp)
	}
}

// TestResetEventsPersist: a Reset is an event that a replica that missed it
// must still learn, so its record never expires, not even as a cooldown.
func TestResetEventsPersist(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr())
	ctx := context.Background()
	store := New(client, WithExpiryMargin(0))
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "k", State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent}))
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "k", State: credpool.StateOK, Epoch: 1}))
	// After the Reset the key cools briefly: that record must outlive its
	// cooldown, or a replica would load nothing and keep the key dead.
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "k", State: credpool.StateExhausted, Reason: credpool.ReasonRateLimit,
		ResetAt: time.Now().Add(50 * time.Millisecond), Epoch: 1}))
	time.Sleep(200 * time.Millisecond)
	r, ok := stored(t, client, DefaultNamespace, "k")
	require.True(t, ok, "the reset outlives the cooldown")
	assert.Equal(t, uint64(1), r.Epoch)

	late := watch(t, New(client), "k") // a replica that was down
	require.Eventually(t, func() bool { return len(late.all()) == 1 }, time.Second, time.Millisecond)
	assert.Equal(t, r, late.all()[0])
	local := credpool.Record{Fingerprint: "k", State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent}
	assert.Equal(t, credpool.StateExhausted, local.Merge(late.all()[0]).State, "its dead key is revived (and cooling)")
}

// corruptRecords are stored values, by fingerprint, that no replica wrote:
// each is one a Load leaves out and reports, a Watch skips and a Save refuses
// to merge into. None of their content may show in an error.
func corruptRecords() map[string]string {
	return map[string]string{
		"fp-json":  `sk-proj-NOT-A-RECORD-0123456789`,
		"fp-other": encode(credpool.Record{Fingerprint: "fp-elsewhere", State: credpool.StateDead}),
		"fp-state": `{"fingerprint":"fp-state","state":"zombie","reset_s":0,"reset_ns":0,"epoch":"1"}`,
		"fp-epoch": encode(credpool.Record{Fingerprint: "fp-epoch", State: credpool.StateDead, Epoch: math.MaxUint64}),
		"fp-past":  encode(credpool.Record{Fingerprint: "fp-past", State: credpool.StateDead, Epoch: maxEpoch + 1}),
		"fp-type":  `{"fingerprint":"fp-type","state":"dead","reset_s":0,"reset_ns":0,"epoch":7}`,
	}
}

// leaks are what corruptRecords hold that an error must never repeat.
var leaks = []string{"sk-proj", "NOT-A-RECORD", "fp-elsewhere", "zombie", "18446744073709551615", "4294967297"}

// goodRecords saves three records a replica would write, and returns them.
func goodRecords(t *testing.T, store *Store) []credpool.Record {
	t.Helper()
	good := []credpool.Record{
		{Fingerprint: "fp-dead", State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent},
		{Fingerprint: "fp-cool", State: credpool.StateExhausted, Reason: credpool.ReasonRateLimit, ResetAt: time.Now().UTC().Add(time.Hour).Truncate(time.Second)},
		{Fingerprint: "fp-reset", State: credpool.StateOK, Epoch: maxEpoch},
	}
	for _, r := range good {
		require.NoError(t, store.Save(context.Background(), r))
	}
	return good
}

// plant stores corruptRecords and returns their fingerprints.
func plant(t *testing.T, c redis.UniversalClient, ns string) []string {
	t.Helper()
	var fps []string
	for fp, v := range corruptRecords() {
		require.NoError(t, c.Set(context.Background(), "{"+ns+"}:key:"+fp, v, 0).Err())
		fps = append(fps, fp)
	}
	return fps
}

// TestLoadSkipsAndReportsCorruptRecords: Load returns the records it can
// read, and reports each it cannot by its Redis key, without its content.
func TestLoadSkipsAndReportsCorruptRecords(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr())
	ctx := context.Background()
	store := New(client)
	good := goodRecords(t, store)
	bad := plant(t, client, DefaultNamespace)
	keys := append([]string{"fp-absent", "fp-dead", "fp-cool", "fp-reset"}, bad...)

	records, err := store.Load(ctx, keys)
	assert.ElementsMatch(t, good, records, "the good records still load")
	require.Error(t, err)
	require.ErrorIs(t, err, credpool.ErrCorruptRecord, "the core tells skipped records from a store that failed")
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "errors.Join of one error per record: %T", err)
	require.Len(t, joined.Unwrap(), len(bad))
	for _, e := range joined.Unwrap() {
		assert.ErrorIs(t, e, credpool.ErrCorruptRecord)
		var ce *corruptError
		require.ErrorAs(t, e, &ce)
		assert.Contains(t, bad, strings.TrimPrefix(ce.name, "{credpool}:key:"), "names the Redis key: %v", e)
	}
	for _, fp := range bad {
		assert.Contains(t, err.Error(), "{credpool}:key:"+fp)
	}
	for _, leak := range leaks {
		assert.NotContains(t, err.Error(), leak, "an error never repeats a stored value")
	}
	t.Logf("Load's error:\n%v", err)

	// Asked for good records only, Load reads no other and reports nothing.
	records, err = store.Load(ctx, []string{"fp-dead", "fp-dead", "fp-absent"})
	require.NoError(t, err)
	assert.Equal(t, good[:1], records, "a fingerprint asked for twice loads once")
	records, err = store.Load(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, records)
}

// TestWatchGoesOnPastCorruptRecords: a watch skips the stored and the
// published records it cannot read, and goes on applying the others.
func TestWatchGoesOnPastCorruptRecords(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr())
	ctx := context.Background()
	store := New(client)
	good := goodRecords(t, store)
	bad := plant(t, client, DefaultNamespace)

	rec := watch(t, store, append([]string{"fp-dead", "fp-cool", "fp-reset"}, bad...)...)
	assert.ElementsMatch(t, good, rec.all(), "the load applies the records it can read")

	// Published records it cannot read, all of keys it watches.
	for _, v := range corruptRecords() {
		require.NoError(t, client.Publish(ctx, store.channel, v).Err())
	}
	require.NoError(t, client.Publish(ctx, store.channel, "").Err())
	require.NoError(t, client.Publish(ctx, store.channel, `{"fingerprint":"fp-dead","state":"ok","epoch":"99"}`).Err())
	// Saving over a corrupt record fails, and publishes nothing.
	err := store.Save(ctx, credpool.Record{Fingerprint: "fp-state", State: credpool.StateDead})
	require.ErrorContains(t, err, "corrupt record at {credpool}:key:fp-state")

	next := credpool.Record{Fingerprint: "fp-cool", State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent}
	require.NoError(t, store.Save(ctx, next))
	require.Eventually(t, func() bool { return len(rec.all()) == len(good)+1 }, 2*time.Second, time.Millisecond,
		"the watch goes on past them")
	assert.Equal(t, next, rec.all()[len(good)], "and applied nothing else")
}

// TestSaveRefusesToMergeIntoCorruptRecords: Save fails on a stored record
// Load would skip, and leaves it as it is.
func TestSaveRefusesToMergeIntoCorruptRecords(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr())
	ctx := context.Background()
	store := New(client)
	plant(t, client, DefaultNamespace)
	for fp, v := range corruptRecords() {
		err := store.Save(ctx, credpool.Record{Fingerprint: fp, State: credpool.StateDead, Epoch: maxEpoch})
		require.Error(t, err, fp)
		assert.Contains(t, err.Error(), "corrupt record at {credpool}:key:"+fp)
		assert.False(t, unreachable(err), "no outage: waiting would not help")
		assert.Equal(t, v, client.Get(ctx, "{credpool}:key:"+fp).Val(), "left as it is")
	}

	for _, bad := range []string{
		`{"fingerprint":"k","state":"dead","reset_s":0,"reset_ns":0,"epoch":"01"}`,
		`{"fingerprint":"k","state":"dead","reset_s":0,"reset_ns":0,"epoch":1}`,
		`{"fingerprint":"k","state":"dead","reset_s":0,"reset_ns":0,"epoch":"4294967297"}`,
		`{"fingerprint":"k","state":"zombie","reset_s":0,"reset_ns":0,"epoch":"1"}`,
		`{"fingerprint":"k","state":"dead","reset_ns":0,"epoch":"1"}`,
		`{"fingerprint":"k","state":"dead","reset_s":0,"reset_ns":1000000000,"epoch":"1"}`,
		`{"state":"dead","reset_s":0,"reset_ns":0,"epoch":"1"}`,
		`[1,2]`, `null`, ``, `sk-proj-secret`,
	} {
		_, err := decode(bad)
		if assert.Error(t, err, bad) {
			for _, leak := range []string{"zombie", "4294967297", "sk-proj", "01", "1000000000"} {
				assert.NotContains(t, err.Error(), leak, bad)
			}
		}
	}
}

// TestOnlyTheRecordsAskedFor: Load and Watch never return nor apply a
// record of a fingerprint they were not given, and never even read one.
func TestOnlyTheRecordsAskedFor(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr())
	log := logCommands(client)
	ctx := context.Background()
	store := New(client)
	otherClient := newClient(t, srv.addr())
	other := New(otherClient) // another pool, in the same namespace
	a := credpool.Record{Fingerprint: "fp-a", State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent}
	require.NoError(t, other.Save(ctx, a))
	require.NoError(t, other.Save(ctx, credpool.Record{Fingerprint: "fp-b", State: credpool.StateDead}))
	bad := plant(t, otherClient, DefaultNamespace) // of keys this pool does not hold

	records, err := store.Load(ctx, []string{"fp-a"})
	require.NoError(t, err, "a corrupt record of another pool's key is none of this pool's business")
	assert.Equal(t, []credpool.Record{a}, records)

	rec := watch(t, store, "fp-a")
	assert.Equal(t, []credpool.Record{a}, rec.all())
	require.NoError(t, other.Save(ctx, credpool.Record{Fingerprint: "fp-b", State: credpool.StateOK, Epoch: 1}))
	require.NoError(t, other.Save(ctx, credpool.Record{Fingerprint: "fp-c", State: credpool.StateDead}))
	a1 := credpool.Record{Fingerprint: "fp-a", State: credpool.StateOK, Epoch: 1}
	require.NoError(t, other.Save(ctx, a1))
	require.Eventually(t, func() bool { return len(rec.all()) == 2 }, 2*time.Second, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, []credpool.Record{a, a1}, rec.all(), "only fp-a's records are applied")

	for _, cmd := range log.commands() {
		for _, fp := range append([]string{"fp-b", "fp-c"}, bad...) {
			assert.NotContains(t, strings.Join(cmd, " "), fp, "never read")
		}
	}
}

// TestLoadReportsOutageAtOnce: New waits on Load, so a Load that cannot
// reach Redis returns no record and the error as soon as the client gives
// up, even during an outage already reported; a Load that reaches Redis
// again ends the outage. (The client's own retries are turned off: by
// default go-redis tries for about 2 s.)
func TestLoadReportsOutageAtOnce(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr(), func(o *redis.Options) {
		o.MaxRetries, o.DialerRetries, o.DialerRetryTimeout = -1, 1, time.Millisecond
	})
	ctx := context.Background()
	store := New(client)
	require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "k", State: credpool.StateDead}))
	srv.kill()
	for i := 0; i < 2; i++ {
		start := time.Now()
		records, err := store.Load(ctx, []string{"k"})
		took := time.Since(start)
		assert.Nil(t, records)
		require.Error(t, err)
		assert.NotErrorIs(t, err, credpool.ErrCorruptRecord, "a store that failed, not a record")
		assert.Less(t, took, 100*time.Millisecond, "no waiting for Redis")
		assert.True(t, store.down.Load(), "the outage is reported: Save and Watch wait for Redis from now on")
		t.Logf("Load %d with Redis down: %v in %v", i+1, err, took)
	}
	srv.restart() // empty
	records, err := store.Load(ctx, []string{"k"})
	require.NoError(t, err)
	assert.Empty(t, records)
	assert.False(t, store.down.Load(), "Redis reached again")
}

// TestLoadIsOneRoundTrip: a Load of n fingerprints, and the load of a watch
// of them, is one MGET, however large n.
func TestLoadIsOneRoundTrip(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	const n = 5000
	fps := make([]string, n)
	var want []credpool.Record
	_, err := newClient(t, srv.addr()).Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i := range fps {
			fps[i] = fmt.Sprintf("%032x", i)
			var r credpool.Record
			switch i % 4 {
			case 0:
				continue // no record
			case 1:
				r = credpool.Record{Fingerprint: fps[i], State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent}
			case 2:
				r = credpool.Record{Fingerprint: fps[i], State: credpool.StateExhausted, Reason: credpool.ReasonBilling,
					ResetAt: time.Date(2100, 1, 1, 0, 0, 0, i, time.UTC)}
			case 3:
				r = credpool.Record{Fingerprint: fps[i], State: credpool.StateOK, Epoch: uint64(i)}
			}
			want = append(want, r)
			pipe.Set(ctx, "{credpool}:key:"+fps[i], encode(r), 0)
		}
		return nil
	})
	require.NoError(t, err)

	client := newClient(t, srv.addr())
	require.NoError(t, client.Ping(ctx).Err()) // the dial, outside the count
	log := logCommands(client)
	store := New(client)
	start := time.Now()
	records, err := store.Load(ctx, fps)
	took := time.Since(start)
	require.NoError(t, err)
	assert.Equal(t, want, records, "every stored record, in the order asked")
	trips, dials := log.roundTrips()
	assert.Equal(t, 1, trips, "one round trip")
	assert.Zero(t, dials)
	cmds := log.commands()
	require.Len(t, cmds, 1)
	assert.Equal(t, "mget", cmds[0][0])
	assert.Len(t, cmds[0], n+1)
	t.Logf("Load of %d fingerprints (%d stored): %d round trip, %d command, %v", n, len(want), trips, len(cmds), took)

	log.reset()
	rec := watch(t, store, fps...)
	assert.Equal(t, want, rec.all())
	var names []string
	for _, cmd := range log.commands() {
		if cmd[0] != "hello" && cmd[0] != "client" { // the subscription's connection handshake
			names = append(names, cmd[0])
		}
	}
	assert.Equal(t, []string{"mget"}, names, "the watch's load: one MGET, nothing else")
}

func TestSaveRefusesBadRecords(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never reached
	defer client.Close()
	store := New(client)
	assert.ErrorContains(t, store.Save(context.Background(), credpool.Record{State: credpool.StateDead}), "without a key")
	assert.ErrorContains(t, store.Save(context.Background(), credpool.Record{Fingerprint: "k", State: "zombie"}), "unknown state")
	assert.ErrorContains(t, store.Save(context.Background(), credpool.Record{Fingerprint: "k", State: credpool.StateOK, Epoch: maxEpoch + 1}),
		"past any number of resets")
}

func TestNewPanicsOnMisuse(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	assert.PanicsWithValue(t, "redisstore: New: nil client", func() { New(nil) })
	assert.PanicsWithValue(t, "redisstore: WithNamespace: empty namespace", func() { New(client, WithNamespace("")) })
	assert.Panics(t, func() { New(client, WithExpiryMargin(-time.Second)) })
	s := New(client, WithNamespace("svc-a"), nil)
	assert.Equal(t, "{svc-a}:key:", s.prefix)
	assert.Equal(t, "{svc-a}:changes", s.channel)
}

func TestNamespacesAreSeparate(t *testing.T) {
	srv := startRedis(t)
	client := newClient(t, srv.addr())
	ctx := context.Background()
	a, b := New(client, WithNamespace("a")), New(client, WithNamespace("b"))
	recB := watch(t, b, "k")
	require.NoError(t, a.Save(ctx, credpool.Record{Fingerprint: "k", State: credpool.StateDead}))
	_, ok := stored(t, client, "a", "k")
	assert.True(t, ok)
	_, ok = stored(t, client, "b", "k")
	assert.False(t, ok)
	time.Sleep(50 * time.Millisecond)
	assert.Empty(t, recB.all())
	records, err := b.Load(ctx, []string{"k"})
	require.NoError(t, err)
	assert.Empty(t, records)
	records, err = a.Load(ctx, []string{"k"})
	require.NoError(t, err)
	assert.Len(t, records, 1)
	keys := client.Keys(ctx, "*").Val()
	assert.Equal(t, []string{"{a}:key:k"}, keys, "the namespace is the prefix of all a store writes")
}

func TestCodecRoundTrip(t *testing.T) {
	for _, r := range []credpool.Record{
		{Fingerprint: "k", State: credpool.StateOK},
		{Fingerprint: "k", State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent, Epoch: maxEpoch},
		{Fingerprint: "k", State: credpool.StateExhausted, Reason: credpool.ReasonRateLimit, ResetAt: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)},
		{Fingerprint: "k", State: credpool.StateExhausted, ResetAt: time.Date(1960, 1, 1, 0, 0, 0, 999_999_999, time.UTC)},
	} {
		got, err := decode(encode(r))
		require.NoError(t, err)
		assert.Equal(t, r, got)
	}
	// A time in another zone comes back as the same instant, in UTC.
	local := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	got, err := decode(encode(credpool.Record{Fingerprint: "k", State: credpool.StateExhausted, ResetAt: local}))
	require.NoError(t, err)
	assert.True(t, local.Equal(got.ResetAt))
	// An epoch past maxEpoch is refused, as the core refuses it.
	_, err = decode(encode(credpool.Record{Fingerprint: "k", State: credpool.StateOK, Epoch: maxEpoch + 1}))
	assert.ErrorContains(t, err, "epoch past any number of resets")
}

// serverError is a reply error of Redis, as go-redis types them.
type serverError string

func (e serverError) Error() string { return string(e) }
func (serverError) RedisError()     {}

func TestUnreachable(t *testing.T) {
	for err, want := range map[error]bool{
		&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}: true,
		io.EOF:         true,
		errPartitioned: true,
		serverError("LOADING Redis is loading the dataset in memory"):              true,
		serverError("READONLY You can't write against a read only replica."):       true,
		serverError("CLUSTERDOWN The cluster is down"):                             true,
		serverError("ERR Error running script: credpool: corrupt record at {x}:k"): false,
		serverError("NOPERM this user has no permissions"):                         false,
		redis.ErrClosed: false,
		&corruptError{name: "{credpool}:key:k", why: "no key"}: false,
	} {
		assert.Equal(t, want, unreachable(err), "%v", err)
	}
}
