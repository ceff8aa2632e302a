package redisstore

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitWatchers waits until n watches are subscribed to the default
// namespace's channel. On a Cluster, each node counts its own subscribers.
func waitWatchers(t *testing.T, c redis.UniversalClient, n int64) {
	t.Helper()
	const channel = "{" + DefaultNamespace + "}:changes"
	ctx := context.Background()
	count := func() int64 {
		cluster, ok := c.(*redis.ClusterClient)
		if !ok {
			return c.PubSubNumSub(ctx, channel).Val()[channel]
		}
		var mu sync.Mutex
		var sum int64
		_ = cluster.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
			got := node.PubSubNumSub(ctx, channel).Val()[channel]
			mu.Lock()
			sum += got
			mu.Unlock()
			return nil
		})
		return sum
	}
	require.Eventually(t, func() bool { return count() == n }, 5*time.Second, time.Millisecond, "%d watchers subscribed", n)
}

// killLog records, by key index, when a Transport saw each key die.
type killLog struct {
	mu   sync.Mutex
	at   map[int]time.Time
	dead chan int // every kill's index, as it happens
}

func newKillLog(n int) *killLog {
	return &killLog{at: map[int]time.Time{}, dead: make(chan int, n)}
}

func (k *killLog) onStateChange(c credpool.StateChange) {
	if c.To != credpool.StateDead {
		return
	}
	now := time.Now()
	k.mu.Lock()
	k.at[c.Index] = now
	k.mu.Unlock()
	k.dead <- c.Index
}

func (k *killLog) when(i int) time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.at[i]
}

// awaitKill waits for the kill of key i.
func (k *killLog) awaitKill(t *testing.T, i int, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case j := <-k.dead:
			if j == i {
				return k.when(i)
			}
		case <-deadline:
			t.Fatalf("key %d not killed within %s", i, timeout)
		}
	}
}

// TestKillPropagatesToOtherReplica kills keys one by one on replica A and
// measures how long each kill takes to reach replica B through Redis: from
// A's state change to B's.
func TestKillPropagatesToOtherReplica(t *testing.T) {
	srv := startRedis(t)
	p := newProvider(t)
	const n = 251 // 250 kills; the last key stays alive
	keys := testKeys(n)
	onA, onB := newKillLog(n), newKillLog(n)
	a := newTransport(t, New(newClient(t, srv.addr())), keys, credpool.WithStrategy(credpool.FillFirst),
		credpool.WithBase(p.Client().Transport), credpool.WithOnStateChange(onA.onStateChange))
	b := newTransport(t, New(newClient(t, srv.addr())), keys,
		credpool.WithBase(p.Client().Transport), credpool.WithOnStateChange(onB.onStateChange))
	waitWatchers(t, newClient(t, srv.addr()), 2)

	// Each request through A meets the first live key revoked, kills it, and
	// succeeds on the next one.
	latencies := make([]time.Duration, 0, n-1)
	for i := 0; i < n-1; i++ {
		p.revoke("", keys[i])
		require.Equal(t, 200, get(t, a, p.URL))
		killedOnA := onA.awaitKill(t, i, time.Second)
		killedOnB := onB.awaitKill(t, i, 2*time.Second)
		latencies = append(latencies, killedOnB.Sub(killedOnA))
	}
	slices.Sort(latencies)
	p50, p99 := percentile(latencies, 0.50), percentile(latencies, 0.99)
	t.Logf("propagation over %d kills: p50 %v, p99 %v (min %v, max %v)", len(latencies), p50, p99,
		latencies[0], latencies[len(latencies)-1])
	assert.Less(t, p99, 100*time.Millisecond)

	// On B every killed key is out of rotation, without B ever sending it.
	for i, s := range b.Keys() {
		if i < n-1 {
			require.Equal(t, credpool.StateDead, s.State, "key %d", i)
			require.Equal(t, credpool.ReasonAuthPermanent, s.Reason, "key %d", i)
		}
	}
	before := p.count(keys[n-1])
	for i := 0; i < 20; i++ {
		require.Equal(t, 200, get(t, b, p.URL))
	}
	assert.Equal(t, before+20, p.count(keys[n-1]), "B sends only the live key")
}

// sample is one request of a traffic loop.
type sample struct {
	at     time.Time
	took   time.Duration
	status int
	err    error
}

// traffic sends requests through tr one after another until stop is
// closed, and records each.
func traffic(tr *credpool.Transport, url string, stop <-chan struct{}, out *[]sample, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-stop:
			return
		default:
		}
		start := time.Now()
		status, err := tryGet(tr, url)
		*out = append(*out, sample{at: start, took: time.Since(start), status: status, err: err})
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRedisKilledMidRun kills redis-server under two replicas that serve
// requests: requests go on as fast as before, a kill made on A meanwhile
// stays on A, and reaches B soon after redis-server is back.
//
// A key is revoked for A's requests only (path /a), so that B can learn of
// the kill only through Redis, not by meeting the revoked key itself.
func TestRedisKilledMidRun(t *testing.T) {
	srv := startRedis(t)
	p := newProvider(t)
	keys := testKeys(6)
	onA, onB := newKillLog(len(keys)), newKillLog(len(keys))
	a := newTransport(t, New(newClient(t, srv.addr())), keys,
		credpool.WithBase(p.Client().Transport), credpool.WithOnStateChange(onA.onStateChange))
	b := newTransport(t, New(newClient(t, srv.addr())), keys,
		credpool.WithBase(p.Client().Transport), credpool.WithOnStateChange(onB.onStateChange))
	observer := newClient(t, srv.addr())
	waitWatchers(t, observer, 2)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var onAReqs, onBReqs []sample
	wg.Add(2)
	go traffic(a, p.URL+"/a", stop, &onAReqs, &wg)
	go traffic(b, p.URL+"/b", stop, &onBReqs, &wg)
	stopped := false
	stopTraffic := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopTraffic()

	// With Redis up, a kill on A reaches B.
	time.Sleep(100 * time.Millisecond)
	p.revoke("/a", keys[1])
	onA.awaitKill(t, 1, time.Second)
	onB.awaitKill(t, 1, time.Second)

	// Redis dies; a key dies on A meanwhile.
	const outage = 3500 * time.Millisecond
	srv.kill()
	down := time.Now()
	time.Sleep(300 * time.Millisecond)
	p.revoke("/a", keys[2])
	onA.awaitKill(t, 2, time.Second)
	time.Sleep(time.Until(down.Add(outage)))
	assert.Equal(t, credpool.StateOK, b.Keys()[2].State, "B cannot know yet")

	// Redis returns, empty.
	restart := time.Now()
	srv.restart()
	ready := time.Now()
	reached := onB.awaitKill(t, 2, 5*time.Second)
	t.Logf("a kill made during a %v Redis outage reached the other replica %v after redis-server was restarted (%v after it first answered)",
		outage, reached.Sub(restart).Round(time.Millisecond), reached.Sub(ready).Round(time.Millisecond))
	assert.LessOrEqual(t, reached.Sub(restart), time.Second, "convergence within 1 s of Redis's return")

	time.Sleep(200 * time.Millisecond)
	stopTraffic()
	for name, samples := range map[string][]sample{"A": onAReqs, "B": onBReqs} {
		var worst, worstDown time.Duration
		var during int
		for _, s := range samples {
			require.NoError(t, s.err, "%s: request at %v", name, s.at.Sub(down))
			require.Equal(t, 200, s.status, "%s: request at %v", name, s.at.Sub(down))
			assert.Less(t, s.took, 200*time.Millisecond, "%s: request at %v", name, s.at.Sub(down))
			worst = max(worst, s.took)
			if !s.at.Before(down) && s.at.Before(restart) {
				during++
				worstDown = max(worstDown, s.took)
			}
		}
		t.Logf("replica %s: %d requests, %d while Redis was down; slowest %v, slowest while down %v",
			name, len(samples), during, worst, worstDown)
		assert.Greater(t, during, 50, "%s kept serving while Redis was down", name)
	}
}

// TestRestartKeepsDeadKeyDead: a key killed by a Transport that has since
// closed is dead for a new Transport on the same Redis, which never sends
// it, and Redis holds nothing of the keys.
func TestRestartKeepsDeadKeyDead(t *testing.T) {
	srv := startRedis(t)
	p := newProvider(t)
	keys := testKeys(2)
	keys[0], keys[1] = "sk-live-aaaaaaaaaaaaaaaaaaaaaaaaaaaa1111", "sk-live-bbbbbbbbbbbbbbbbbbbbbbbbbbbb2222"
	p.revoke("", keys[0])
	salt := credpool.WithStoreSalt([]byte("a salt of this service"))
	first := newTransport(t, New(newClient(t, srv.addr())), keys, credpool.WithStrategy(credpool.FillFirst),
		credpool.WithBase(p.Client().Transport), salt)
	require.Equal(t, 200, get(t, first, p.URL))
	require.Equal(t, credpool.StateDead, first.Keys()[0].State)
	require.NoError(t, first.Close())

	observer := newClient(t, srv.addr())
	r, ok := stored(t, observer, DefaultNamespace, credpool.Fingerprint([]byte("a salt of this service"), keys[0]))
	require.True(t, ok, "closing flushed the kill")
	assert.Equal(t, credpool.StateDead, r.State)

	second := newTransport(t, New(newClient(t, srv.addr())), keys, credpool.WithStrategy(credpool.FillFirst),
		credpool.WithBase(p.Client().Transport), salt)
	require.Eventually(t, func() bool { return second.Keys()[0].State == credpool.StateDead }, time.Second, time.Millisecond)
	require.Equal(t, 200, get(t, second, p.URL))
	assert.Equal(t, 1, p.count(keys[0]), "after the restart the dead key is never sent")

	// Nothing in Redis reveals a key: not a name, not a value.
	ctx := context.Background()
	for _, name := range observer.Keys(ctx, "*").Val() {
		dump := name + " " + observer.Get(ctx, name).Val() + " " + strings.Join(observer.SMembers(ctx, name).Val(), " ")
		for _, k := range keys {
			assert.NotContains(t, dump, k)
			assert.NotContains(t, dump, k[len(k)-12:])
		}
	}
}

// TestReplicaCutOffLearnsOfReset cuts replica D off from Redis while E
// resets a dead key: once D is back, it learns of the Reset and revives the
// key, and it has logged the outage and the recovery once each.
func TestReplicaCutOffLearnsOfReset(t *testing.T) {
	srv := startRedis(t)
	p := newProvider(t)
	keys := testKeys(2)
	p.revoke("", keys[0])
	cut := &partitioner{}
	var logs lockedBuffer
	salt := []byte("a salt of this service")
	d := newTransport(t, New(newClient(t, srv.addr(), func(o *redis.Options) { o.Dialer = cut.dial })), keys,
		credpool.WithBase(p.Client().Transport), credpool.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		credpool.WithStoreSalt(salt))
	e := newTransport(t, New(newClient(t, srv.addr())), keys, credpool.WithStrategy(credpool.FillFirst),
		credpool.WithBase(p.Client().Transport), credpool.WithStoreSalt(salt))
	observer := newClient(t, srv.addr())
	waitWatchers(t, observer, 2)

	require.Equal(t, 200, get(t, e, p.URL))
	require.Eventually(t, func() bool { return d.Keys()[0].State == credpool.StateDead }, time.Second, time.Millisecond)

	cut.partition()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "store unavailable") }, 2*time.Second, time.Millisecond)
	e.Reset()
	fp := credpool.Fingerprint(salt, keys[0])
	require.Eventually(t, func() bool {
		r, ok := stored(t, observer, DefaultNamespace, fp)
		return ok && r.Epoch == 1 && r.State == credpool.StateOK
	}, time.Second, time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, credpool.StateDead, d.Keys()[0].State, "D is cut off")

	cut.heal()
	healed := time.Now()
	require.Eventually(t, func() bool { return d.Keys()[0].State == credpool.StateOK }, 2*time.Second, time.Millisecond,
		"D learns of the Reset")
	t.Logf("the cut-off replica learned of the Reset %v after it could reach Redis again", time.Since(healed).Round(time.Millisecond))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "store available again") }, time.Second, time.Millisecond)
	assert.Equal(t, 1, strings.Count(logs.String(), "store unavailable"), "one outage, logged once:\n%s", logs.String())
}

// TestSilentConnectionIsDetected freezes the link between replica D and
// Redis without closing it: D's watch notices by its PING going unanswered,
// reports the outage, and catches up with what it missed once the link
// works again.
func TestSilentConnectionIsDetected(t *testing.T) {
	srv := startRedis(t)
	px := startProxy(t, srv.addr())
	p := newProvider(t)
	keys := testKeys(2)
	p.revoke("", keys[0])
	var logs lockedBuffer
	store := New(newClient(t, px.addr()))
	store.ping = 100 * time.Millisecond
	loaded := make(chan struct{}, 10)
	store.loaded = func() { loaded <- struct{}{} }
	d := newTransport(t, store, keys, credpool.WithBase(p.Client().Transport),
		credpool.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	e := newTransport(t, New(newClient(t, srv.addr())), keys, credpool.WithStrategy(credpool.FillFirst),
		credpool.WithBase(p.Client().Transport))
	waitWatchers(t, newClient(t, srv.addr()), 2)
	<-loaded // freezing during the load would stall it, rather than the subscription

	px.freeze()
	if !assert.Eventually(t, func() bool { return strings.Contains(logs.String(), "no reply from Redis in 200ms") }, 2*time.Second,
		time.Millisecond, "the watch notices the silence") {
		t.Fatal(logs.String())
	}
	require.Equal(t, 200, get(t, e, p.URL))
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, credpool.StateOK, d.Keys()[0].State, "D cannot know")

	px.thaw()
	thawed := time.Now()
	require.Eventually(t, func() bool { return d.Keys()[0].State == credpool.StateDead }, 5*time.Second, time.Millisecond,
		"D catches up")
	t.Logf("the replica behind a frozen link caught up %v after it thawed", time.Since(thawed).Round(time.Millisecond))
	assert.Equal(t, 1, strings.Count(logs.String(), "store unavailable"), "one outage, logged once:\n%s", logs.String())
}

// TestDroppedConnectionResyncs drops replica D's subscription while Redis
// stays up, and saves a kill in the same transaction, so that D never gets
// the message: go-redis resubscribes at once, and the reload that follows
// brings the kill, without D reporting an outage.
func TestDroppedConnectionResyncs(t *testing.T) {
	srv := startRedis(t)
	p := newProvider(t)
	keys := testKeys(2)
	salt := []byte("a salt of this service")
	var logs lockedBuffer
	store := New(newClient(t, srv.addr()))
	loads := make(chan struct{}, 10)
	store.loaded = func() { loads <- struct{}{} }
	d := newTransport(t, store, keys, credpool.WithBase(p.Client().Transport), credpool.WithStoreSalt(salt),
		credpool.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	<-loads

	ctx := context.Background()
	fp := credpool.Fingerprint(salt, keys[0])
	kill := credpool.Record{Fingerprint: fp, State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent}
	_, err := newClient(t, srv.addr()).TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub")
		saveScript.Eval(ctx, pipe, []string{store.prefix + fp}, encode(kill), fp, store.channel, "")
		return nil
	})
	require.NoError(t, err)

	select {
	case <-loads:
	case <-time.After(2 * time.Second):
		t.Fatal("no reload after the connection dropped")
	}
	require.Eventually(t, func() bool { return d.Keys()[0].State == credpool.StateDead }, time.Second, time.Millisecond)
	assert.NotContains(t, logs.String(), "store unavailable", "a dropped connection that comes back at once is no outage")
}

// TestNewLoadsPastCorruptRecord: a replica starting on a Redis that holds a
// corrupt record of one of its keys loads the others before New returns,
// logs the corrupt one by its Redis key, and reports no outage.
func TestNewLoadsPastCorruptRecord(t *testing.T) {
	srv := startRedis(t)
	p := newProvider(t)
	keys := testKeys(3)
	salt := []byte("a salt of this service")
	fps := make([]string, len(keys))
	for i, k := range keys {
		fps[i] = credpool.Fingerprint(salt, k)
	}
	ctx := context.Background()
	observer := newClient(t, srv.addr())
	require.NoError(t, New(observer).Save(ctx, credpool.Record{Fingerprint: fps[0], State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent}))
	require.NoError(t, observer.Set(ctx, "{credpool}:key:"+fps[1],
		`{"fingerprint":"`+fps[1]+`","state":"zombie","reset_s":0,"reset_ns":0,"epoch":"1"}`, 0).Err())

	var logs lockedBuffer
	tr := newTransport(t, New(newClient(t, srv.addr())), keys, credpool.WithStrategy(credpool.FillFirst),
		credpool.WithBase(p.Client().Transport), credpool.WithStoreSalt(salt),
		credpool.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	status := tr.Keys()
	assert.Equal(t, credpool.StateDead, status[0].State, "loaded before New returned")
	assert.Equal(t, credpool.StateOK, status[1].State)
	for i := 0; i < 5; i++ {
		require.Equal(t, 200, get(t, tr, p.URL))
	}
	assert.Zero(t, p.count(keys[0]), "the dead key is never sent")
	assert.Contains(t, logs.String(), "{credpool}:key:"+fps[1], "the corrupt record is logged by its Redis key")
	assert.NotContains(t, logs.String(), "zombie")
	assert.NotContains(t, logs.String(), "store unavailable", "a corrupt record is no outage")
}

// TestRestartNeverSendsKnownBadKeys is a fleet's deploy on Redis, ten times
// over: a process starts on a Redis that holds a dead and a cooling key, and
// takes traffic at once. Neither key is ever sent: New loads the stored
// states, in one round trip, before it returns.
func TestRestartNeverSendsKnownBadKeys(t *testing.T) {
	srv := startRedis(t)
	p := newProvider(t)
	keys := testKeys(3)
	ctx := context.Background()
	seed := New(newClient(t, srv.addr()))
	require.NoError(t, seed.Save(ctx, credpool.Record{Fingerprint: credpool.Fingerprint([]byte("credpool/v1"), keys[0]),
		State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent}))
	require.NoError(t, seed.Save(ctx, credpool.Record{Fingerprint: credpool.Fingerprint([]byte("credpool/v1"), keys[1]),
		State: credpool.StateExhausted, Reason: credpool.ReasonRateLimit, ResetAt: time.Now().Add(time.Hour)}))
	for range 10 {
		tr := newTransport(t, New(newClient(t, srv.addr())), keys, credpool.WithBase(p.Client().Transport))
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, err := tryGet(tr, p.URL)
				assert.NoError(t, err)
				assert.Equal(t, 200, status)
			}()
		}
		wg.Wait()
		require.NoError(t, tr.Close())
	}
	assert.Zero(t, p.count(keys[0]), "the dead key was sent")
	assert.Zero(t, p.count(keys[1]), "the cooling key was sent")
	assert.Equal(t, 200, p.count(keys[2]))
}
