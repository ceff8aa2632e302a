package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sharedKill runs two replicas on clients made by newClient: a key killed on
// A is out of rotation on B, and a new replica C loads it.
func sharedKill(t *testing.T, newClient func() redis.UniversalClient) {
	t.Helper()
	p := newProvider(t)
	keys := testKeys(3)
	p.revoke("", keys[0])
	onB := newKillLog(len(keys))
	a := newTransport(t, New(newClient()), keys, credpool.WithStrategy(credpool.FillFirst), credpool.WithBase(p.Client().Transport))
	b := newTransport(t, New(newClient()), keys, credpool.WithBase(p.Client().Transport), credpool.WithOnStateChange(onB.onStateChange))
	waitWatchers(t, newClient(), 2)
	require.Equal(t, 200, get(t, a, p.URL))
	onB.awaitKill(t, 0, time.Second)
	for i := 0; i < 10; i++ {
		require.Equal(t, 200, get(t, b, p.URL))
	}
	assert.Equal(t, 1, p.count(keys[0]), "B never sends the dead key")
	c := newTransport(t, New(newClient()), keys, credpool.WithBase(p.Client().Transport))
	require.Eventually(t, func() bool { return c.Keys()[0].State == credpool.StateDead }, time.Second, time.Millisecond)
	for _, tr := range []*credpool.Transport{a, b, c} {
		require.NoError(t, tr.Close())
	}
}

// TestCluster runs the store on a Redis Cluster of three masters.
func TestCluster(t *testing.T) {
	ctx := context.Background()
	ranges := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	var addrs, busPorts []string
	var nodes []*redis.Client
	for _, r := range ranges {
		busPort := strconv.Itoa(freePort(t))
		busPorts = append(busPorts, busPort)
		srv := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", busPort, "--cluster-node-timeout", "2000")
		node := newClient(t, srv.addr())
		require.NoError(t, node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", r[0], r[1]).Err())
		addrs, nodes = append(addrs, srv.addr()), append(nodes, node)
	}
	for i, addr := range addrs[1:] {
		host, port, _ := strings.Cut(addr, ":")
		require.NoError(t, nodes[0].Do(ctx, "CLUSTER", "MEET", host, port, busPorts[i+1]).Err())
	}
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			info := n.ClusterInfo(ctx).Val()
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				return false
			}
		}
		return true
	}, 15*time.Second, 20*time.Millisecond, "cluster formed")

	newCluster := func() redis.UniversalClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	// Every key of a namespace is in one slot, whatever the fingerprint.
	slot := nodes[0].ClusterKeySlot(ctx, "{credpool}:changes").Val()
	for _, k := range []string{"{credpool}:key:0123456789abcdef0123456789abcdef", "{credpool}:key:ffff"} {
		assert.Equal(t, slot, nodes[0].ClusterKeySlot(ctx, k).Val(), k)
	}

	t.Run("script", func(t *testing.T) {
		// The merge script, Load's MGET, the watch and the expiry on a
		// Cluster.
		client := newCluster()
		store := New(client, WithNamespace("script"))
		future := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
		cool := credpool.Record{Fingerprint: "k1", State: credpool.StateExhausted, Reason: credpool.ReasonRateLimit, ResetAt: future}
		dead := credpool.Record{Fingerprint: "k2", State: credpool.StateDead, Reason: credpool.ReasonAuthPermanent}
		require.NoError(t, store.Save(ctx, cool))
		require.NoError(t, store.Save(ctx, credpool.Record{Fingerprint: "k1", State: credpool.StateOK}))
		require.NoError(t, store.Save(ctx, dead))
		got, ok := stored(t, client, "script", "k1")
		require.True(t, ok)
		assert.Equal(t, cool, got)
		assert.Greater(t, pttl(t, client, "{script}:key:k1"), int64(0))
		records, err := store.Load(ctx, []string{"k1", "k2", "k3"})
		require.NoError(t, err)
		assert.Equal(t, []credpool.Record{cool, dead}, records)
		rec := watch(t, New(newCluster(), WithNamespace("script")), "k1", "k2", "k3")
		assert.ElementsMatch(t, []credpool.Record{cool, dead}, rec.all())
	})
	sharedKill(t, newCluster)
}

// TestSentinel runs the store behind Sentinel, through a failover: the
// state saved before it survives on the promoted replica, and kills made
// after it still reach every replica.
func TestSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes seconds")
	}
	ctx := context.Background()
	master := startRedis(t, "--repl-diskless-sync-delay", "0")
	replica := startRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	dir := t.TempDir()
	sentinel := startServer(t, func(port int) []string {
		conf := writeFile(t, dir, fmt.Sprintf("sentinel-%d.conf", port), fmt.Sprintf(
			"port %d\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %d 1\n"+
				"sentinel down-after-milliseconds mymaster 500\nsentinel failover-timeout mymaster 5000\n",
			port, master.port))
		return []string{conf, "--sentinel"}
	})
	newFailover := func() redis.UniversalClient {
		c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{sentinel.addr()}})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	sentinelClient := redis.NewSentinelClient(&redis.Options{Addr: sentinel.addr()})
	t.Cleanup(func() { _ = sentinelClient.Close() })
	require.Eventually(t, func() bool {
		replicas, err := sentinelClient.Replicas(ctx, "mymaster").Result()
		return err == nil && len(replicas) == 1
	}, 15*time.Second, 50*time.Millisecond, "the sentinel knows the replica")

	sharedKill(t, newFailover)

	// Fail over: the master dies, the sentinel promotes the replica.
	p := newProvider(t)
	keys := testKeys(3)
	onB := newKillLog(len(keys))
	a := newTransport(t, New(newFailover()), keys, credpool.WithStrategy(credpool.FillFirst), credpool.WithBase(p.Client().Transport))
	b := newTransport(t, New(newFailover()), keys, credpool.WithBase(p.Client().Transport), credpool.WithOnStateChange(onB.onStateChange))
	waitWatchers(t, newFailover(), 2)
	require.Eventually(t, func() bool {
		return a.Keys()[0].State == credpool.StateDead && b.Keys()[0].State == credpool.StateDead
	}, time.Second, time.Millisecond, "A and B loaded the kill of sharedKill")
	replicaClient := newClient(t, replica.addr())
	require.Eventually(t, func() bool { return len(replicaClient.Keys(ctx, "{credpool}:key:*").Val()) > 0 },
		5*time.Second, 10*time.Millisecond, "the replica has the records")

	master.kill()
	replicaAddr := replica.addr()
	require.Eventually(t, func() bool {
		addr, err := sentinelClient.GetMasterAddrByName(ctx, "mymaster").Result()
		return err == nil && addr[0]+":"+addr[1] == replicaAddr
	}, 20*time.Second, 50*time.Millisecond, "failed over")
	failedOver := time.Now()

	p.revoke("", keys[1])
	require.Equal(t, 200, get(t, a, p.URL))
	onB.awaitKill(t, 1, 10*time.Second)
	t.Logf("after the failover, a kill reached the other replica %v after the sentinel switched masters",
		time.Since(failedOver).Round(time.Millisecond))
	c := newTransport(t, New(newFailover()), keys, credpool.WithBase(p.Client().Transport))
	require.Eventually(t, func() bool {
		s := c.Keys()
		return s[0].State == credpool.StateDead && s[1].State == credpool.StateDead
	}, time.Second, time.Millisecond, "a new replica loads both kills from the promoted master")
}

// TestRESP2 runs replicas whose clients speak RESP2, as with an older Redis
// or a proxy that knows no RESP3.
func TestRESP2(t *testing.T) {
	srv := startRedis(t)
	sharedKill(t, func() redis.UniversalClient {
		return newClient(t, srv.addr(), func(o *redis.Options) { o.Protocol = 2 })
	})
}
