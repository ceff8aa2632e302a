// Package redisstore is a credpool.Store in Redis, for the replicas of a
// service: a key that one replica finds revoked or rate limited is out of
// rotation on every other within milliseconds, and a replica that starts, or
// comes back after losing Redis, loads the current states.
//
// It works with a single Redis, with Sentinel (redis.NewFailoverClient) and
// with Redis Cluster (redis.NewClusterClient): New takes any
// redis.UniversalClient.
//
// # Data layout
//
// Every Redis key and channel of a Store starts with its namespace ns
// (WithNamespace; "credpool" by default): the namespace is the prefix that
// lets several pools, or several services, share one Redis, each seeing
// only the records of its own namespace. The namespace in braces is a
// Cluster hash tag: every key below hashes to the same slot, so that one
// command or one Lua script may read and write any of them together.
//
//	{ns}:key:<fingerprint>  string   one key's record, as JSON (below)
//	{ns}:changes            channel  every record saved, as JSON
//
// A record is
//
//	{"fingerprint":"<fingerprint>","state":"exhausted","reason":"rate_limit","reset_s":1767225600,"reset_ns":0,"epoch":"0"}
//
// reset_s and reset_ns are the end of a cooldown (Record.ResetAt) in Unix
// seconds and nanoseconds, the zero time when there is none; epoch counts the
// key's Resets, as a decimal string. Both are spelled so that the merge
// script, whose numbers are doubles, compares them exactly.
//
// Redis never sees a key: a record is addressed by the key's fingerprint, an
// HMAC of the key (credpool.Fingerprint), and holds nothing else of it.
//
// Earlier versions also kept a set, {ns}:index, of the fingerprints with a
// record. Nothing reads or writes it any more; it may be deleted.
//
// # Loading
//
// Load reads the records of the fingerprints it is given with one MGET, one
// round trip however many keys the pool has. It never reads a record of a
// fingerprint it was not asked for. A record it cannot read (not JSON, the
// record of another fingerprint, an unknown state, an epoch past any number
// of Resets) is left out and reported: the error joins one error per such
// record, each wrapping credpool.ErrCorruptRecord and naming the record's
// Redis key, never its content; the records it could read are returned.
//
// # Saving
//
// Save runs one Lua script: it merges the new record into the stored one by
// exactly the rules of credpool.Record.Merge, stores the result and
// publishes it on the channel, all in one atomic step. Two replicas saving
// one key at once cannot lose a kill. A stored record that Load could not
// read is left as it is, and the Save fails.
//
// # Expiry
//
// A cooldown at epoch 0 expires by itself, at its end plus a margin
// (WithExpiryMargin): once it is over, it means what no record means, "ok"
// at epoch 0. Every other record is kept: a dead key stays dead for every
// replica, started now or later, until a Reset; and a record at epoch 1 or
// more carries a Reset, which a replica that missed it must still learn, or
// it would keep a key dead that an operator revived.
//
// # Watching
//
// Watch subscribes to the channel first, then loads the records of its keys
// as Load does, then applies every record published of its keys, so nothing
// saved in between is missed. It skips the records it cannot read, and those
// of fingerprints it was not given (other pools of the namespace). When its
// connection drops, go-redis reconnects and resubscribes once; if that works
// (a failover, a dropped connection), the watch loads its keys' records
// again and goes on. If it does not, Watch returns the error, and the
// Transport calls it again later. A subscription quiet for 3 s sends a PING,
// and one that gets no reply in 3 more counts as lost: a link that died
// without closing is found too.
//
// # Outages
//
// The call that finds Redis unreachable returns the error, so the Transport
// logs the outage and goes on with its own state. Until a call of the same
// Store reaches Redis again, Save and Watch then wait for it instead of
// failing again, trying every 100 ms, so a replica catches up within about
// that long of Redis's return, however long the outage lasted, rather than
// after the Transport's retry pause. They stop waiting when their context
// ends (Transport.Close). Load never waits for Redis: New waits on it, so it
// returns the error as soon as the client gives up. More bounds come from
// go-redis and the client's options: by default it makes 4 attempts at a
// command (MaxRetries), each of 5 dials 100 ms apart (DialerRetries,
// DialerRetryTimeout), so a call gives up on an unreachable Redis after
// about 2 s, and a waiting Save dials again every 100 ms; and once a client
// has failed to dial PoolSize times in a row, go-redis itself dials only
// once a second until it succeeds.
//
// Redis should persist its data (RDB or AOF) or have a replica: a Redis that
// restarts empty has forgotten the states, and a replica writes its own
// again only when its watch has failed, which a quick restart may not cause.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/credpool/credpool"
	"github.com/redis/go-redis/v9"
)

// Store is a credpool.Store in Redis; see the package documentation for how
// it keeps the records. It is safe for concurrent use, by any number of
// Transports. Create it with New.
type Store struct {
	client  redis.UniversalClient
	margin  time.Duration
	ping    time.Duration // how long a quiet subscription waits before it checks its connection
	prefix  string        // of the records' keys: {ns}:key:
	channel string

	// down is set by a call that found Redis unreachable and cleared by one
	// that reached it: while it is set, Save and Watch wait for Redis rather
	// than report the same outage again.
	down atomic.Bool

	loaded func() // called after each load of a watch; for tests
}

var _ credpool.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*options)

type options struct {
	namespace string
	margin    time.Duration
}

// DefaultNamespace is the namespace of a Store without WithNamespace.
const DefaultNamespace = "credpool"

// DefaultExpiryMargin is the expiry margin of a Store without
// WithExpiryMargin.
const DefaultExpiryMargin = 10 * time.Second

const (
	retryEvery = 100 * time.Millisecond // how often a call waiting for Redis tries again
	pingEvery  = 3 * time.Second        // the default of Store.ping
)

// maxEpoch is the most Resets a record may carry, as in the core, whose
// ResetKey saturates there: a record past it is corrupt or hostile, and
// taken at its word it would outrank every later Reset for good.
const maxEpoch = 1 << 32

// WithNamespace sets the namespace of the store: the prefix of every key and
// of the channel it uses in Redis (see the package documentation), so that
// several pools or services share one Redis. Stores in one namespace share
// the records of the keys they have in common (same key, same salt); stores
// in different namespaces never see each other's. The default is
// DefaultNamespace. An empty namespace makes New panic.
func WithNamespace(ns string) Option {
	return func(o *options) { o.namespace = ns }
}

// WithExpiryMargin sets how long after its end a cooldown's record expires
// in Redis, which covers a difference between the clocks of Redis and of
// the replicas. The default is DefaultExpiryMargin. A negative margin makes
// New panic.
func WithExpiryMargin(d time.Duration) Option {
	return func(o *options) { o.margin = d }
}

// New returns a Store in the Redis behind client, which may be a
// *redis.Client, a Sentinel *redis.Client (redis.NewFailoverClient) or a
// *redis.ClusterClient. The Store does not own client: close it after the
// Transports using the Store. New panics if client is nil or an option is
// invalid.
func New(client redis.UniversalClient, opts ...Option) *Store {
	if client == nil {
		panic("redisstore: New: nil client")
	}
	o := options{namespace: DefaultNamespace, margin: DefaultExpiryMargin}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.namespace == "" {
		panic("redisstore: WithNamespace: empty namespace")
	}
	if o.margin < 0 {
		panic("redisstore: WithExpiryMargin: negative margin " + o.margin.String())
	}
	tag := "{" + o.namespace + "}"
	return &Store{
		client:  client,
		margin:  o.margin,
		ping:    pingEvery,
		prefix:  tag + ":key:",
		channel: tag + ":changes",
	}
}

// Load returns the stored records of keys, the keys' fingerprints, with one
// MGET. A record it cannot read is left out, and reported in the error: one
// error per such record, joined, each wrapping credpool.ErrCorruptRecord
// and naming the record's Redis key, never its content. A Redis that cannot
// be reached returns no record and the error, without waiting for Redis
// beyond the client's own retries.
func (s *Store) Load(ctx context.Context, keys []string) ([]credpool.Record, error) {
	records, bad, err := s.load(ctx, unique(keys))
	if err != nil {
		if unreachable(err) && ctx.Err() == nil {
			s.down.Store(true) // reported: Save and Watch wait for Redis now
		}
		return nil, fmt.Errorf("redisstore: load: %w", err)
	}
	s.down.Store(false)
	return records, errors.Join(bad...)
}

// load reads the records of fps, which are unique, in one MGET. It returns
// the records it could read and an error for each it could not; or, if the
// MGET failed, only that error.
func (s *Store) load(ctx context.Context, fps []string) (records []credpool.Record, bad []error, err error) {
	if len(fps) == 0 {
		return nil, nil, nil
	}
	names := make([]string, len(fps))
	for i, fp := range fps {
		names[i] = s.prefix + fp
	}
	values, err := s.client.MGet(ctx, names...).Result()
	if err != nil {
		return nil, nil, err
	}
	if len(values) != len(names) {
		return nil, nil, fmt.Errorf("MGET of %d keys returned %d values", len(names), len(values))
	}
	for i, v := range values {
		if v == nil { // no record: ok at epoch 0, or a cooldown that has expired
			continue
		}
		value, ok := v.(string)
		if !ok {
			bad = append(bad, &corruptError{name: names[i], why: "not a string"})
			continue
		}
		r, err := decode(value)
		if err == nil && r.Fingerprint != fps[i] {
			err = errors.New("holds the record of another fingerprint")
		}
		if err != nil {
			bad = append(bad, &corruptError{name: names[i], why: err.Error()})
			continue
		}
		records = append(records, r)
	}
	return records, bad, nil
}

// corruptError reports a stored record Load could not read. It names the
// record's Redis key and what is wrong with it, never the content: a
// stray value could be anything, a key included.
type corruptError struct {
	name string // the Redis key
	why  string
}

func (e *corruptError) Error() string {
	return "redisstore: corrupt record at " + e.name + ": " + e.why
}

func (e *corruptError) Unwrap() error { return credpool.ErrCorruptRecord }

// unique returns keys without repeats, in their first order.
func unique(keys []string) []string {
	seen := make(map[string]bool, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// Save merges r into the stored record of its key, by the rules of
// credpool.Record.Merge, and publishes the result to every watcher, in one
// atomic step (see the package documentation).
func (s *Store) Save(ctx context.Context, r credpool.Record) error {
	switch {
	case r.Fingerprint == "":
		return errors.New("redisstore: save: record without a key")
	case !validState(r.State):
		return fmt.Errorf("redisstore: save %s: unknown state %q", r.Fingerprint, r.State)
	case r.Epoch > maxEpoch:
		return fmt.Errorf("redisstore: save %s: epoch %d is past any number of resets", r.Fingerprint, r.Epoch)
	}
	expireAt := "" // never
	if r.State == credpool.StateExhausted && r.Epoch == 0 && !r.ResetAt.IsZero() {
		expireAt = strconv.FormatInt(r.ResetAt.Add(s.margin).UnixMilli(), 10)
	}
	keys := []string{s.prefix + r.Fingerprint}
	value := encode(r)
	for {
		err := saveScript.Run(ctx, s.client, keys, value, r.Fingerprint, s.channel, expireAt).Err()
		if err == nil {
			s.down.Store(false)
			return nil
		}
		if !s.waitOut(ctx, err) {
			return fmt.Errorf("redisstore: save %s: %w", r.Fingerprint, err)
		}
	}
}

// Watch applies the stored record of each of keys once it is subscribed to
// changes, then every record of those keys saved by anyone, until ctx ends
// or the subscription is lost for good (see the package documentation).
// Records it cannot read, and records of other fingerprints, are skipped.
func (s *Store) Watch(ctx context.Context, keys []string, apply func(credpool.Record)) error {
	fps := unique(keys)
	want := make(map[string]bool, len(fps))
	for _, fp := range fps {
		want[fp] = true
	}
	ps := s.client.Subscribe(ctx, s.channel)
	defer ps.Close()
	// ReceiveTimeout does not watch ctx: closing the subscription ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()

	var (
		live   bool // subscribed, and every record loaded since
		lost   bool // a live subscription dropped; go-redis is reconnecting
		pinged bool // a PING is waiting for its reply
	)
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.ping)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			switch {
			case live && isTimeout(err) && !pinged:
				// Quiet for a while: make sure the connection still works.
				pinged = true
				if err := ps.Ping(ctx); err == nil {
					continue
				}
				live, lost, pinged = false, true, false
			case live && isTimeout(err):
				s.down.Store(true)
				return fmt.Errorf("redisstore: watch: no reply from Redis in %s", 2*s.ping)
			case live:
				// The connection dropped: the next receive reconnects and
				// resubscribes, and the confirmation loads again.
				live, lost, pinged = false, true, false
			case lost:
				s.down.Store(true)
				return fmt.Errorf("redisstore: watch: subscription lost: %w", err)
			case !s.waitOut(ctx, err):
				return fmt.Errorf("redisstore: watch: subscribe: %w", err)
			}
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" || m.Channel != s.channel {
				continue
			}
			// Subscribed, for the first time or again after a reconnection:
			// whatever was saved before is in the load, whatever is saved
			// from now on will be published to us.
			var records []credpool.Record
			for {
				records, _, err = s.load(ctx, fps) // the unreadable ones are skipped; Load reports them
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if !s.waitOut(ctx, err) { // e.g. a Redis still loading its data
					return fmt.Errorf("redisstore: watch: load: %w", err)
				}
			}
			s.down.Store(false)
			for _, r := range records {
				apply(r)
			}
			live, lost = true, false
			if s.loaded != nil {
				s.loaded()
			}
		case *redis.Message:
			r, err := decode(m.Payload)
			if err != nil || !want[r.Fingerprint] {
				continue // not ours to read, or another pool's key
			}
			apply(r)
		}
	}
}

// waitOut decides what a call that failed with err does: it returns false
// when the call should report err, and true, after a pause, when it should
// try again. A call reports a failure that is not about reaching Redis, and
// the first failure of an outage; during an outage already reported, calls
// wait for Redis, until ctx ends.
func (s *Store) waitOut(ctx context.Context, err error) bool {
	if ctx.Err() != nil || !unreachable(err) || !s.down.Swap(true) {
		return false
	}
	t := time.NewTimer(retryEvery)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// unreachable reports whether err says that Redis could not be reached or
// cannot serve for now (loading, failing over), rather than that it refused
// the command. The caller checks its context first.
func unreachable(err error) bool {
	if errors.Is(err, redis.ErrClosed) || errors.Is(err, credpool.ErrCorruptRecord) {
		return false // a closed client, a foreign record: waiting will not help
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return true // a network error, a timeout
	}
	for _, prefix := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN"} {
		if redis.HasErrorPrefix(err, prefix) {
			return true
		}
	}
	return false
}

// isTimeout reports whether err is a read timing out.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// wire is a record as Redis holds it (see the package documentation).
// Decoding requires every field but reason.
type wire struct {
	Fingerprint string          `json:"fingerprint"`
	State       credpool.State  `json:"state"`
	Reason      credpool.Reason `json:"reason,omitempty"`
	ResetS      *int64          `json:"reset_s"`
	ResetNS     *int64          `json:"reset_ns"`
	Epoch       string          `json:"epoch"`
}

// zeroUnix is the zero time.Time in Unix seconds.
var zeroUnix = time.Time{}.Unix()

func encode(r credpool.Record) string {
	sec, nsec := r.ResetAt.Unix(), int64(r.ResetAt.Nanosecond())
	b, err := json.Marshal(wire{Fingerprint: r.Fingerprint, State: r.State, Reason: r.Reason, ResetS: &sec, ResetNS: &nsec,
		Epoch: strconv.FormatUint(r.Epoch, 10)})
	if err != nil {
		panic("redisstore: encoding a record: " + err.Error()) // strings and numbers always encode
	}
	return string(b)
}

// decode reads a record. Its errors say what is wrong, and never repeat
// any of s.
func decode(s string) (credpool.Record, error) {
	var w wire
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		var terr *json.UnmarshalTypeError
		if errors.As(err, &terr) {
			return credpool.Record{}, fmt.Errorf("field %q holds a JSON %s", terr.Field, terr.Value) // "number", "object", …
		}
		return credpool.Record{}, errors.New("not a JSON object")
	}
	epoch, err := strconv.ParseUint(w.Epoch, 10, 64)
	switch {
	case w.Fingerprint == "":
		return credpool.Record{}, errors.New("no key")
	case !validState(w.State):
		return credpool.Record{}, errors.New("unknown state")
	case err != nil || strconv.FormatUint(epoch, 10) != w.Epoch:
		return credpool.Record{}, errors.New("epoch not a decimal number")
	case epoch > maxEpoch:
		return credpool.Record{}, errors.New("epoch past any number of resets")
	case w.ResetS == nil || w.ResetNS == nil || *w.ResetNS < 0 || *w.ResetNS >= int64(time.Second):
		return credpool.Record{}, errors.New("no valid reset time")
	}
	r := credpool.Record{Fingerprint: w.Fingerprint, State: w.State, Reason: w.Reason, Epoch: epoch}
	if *w.ResetS != zeroUnix || *w.ResetNS != 0 {
		r.ResetAt = time.Unix(*w.ResetS, *w.ResetNS).UTC()
	}
	return r, nil
}

func validState(st credpool.State) bool {
	return st == credpool.StateOK || st == credpool.StateExhausted || st == credpool.StateDead || st == credpool.StateDisabled
}

// saveScript merges a record into the stored one and publishes the result.
//
//	KEYS[1]  the record's key        ARGV[1]  the record, as JSON
//	                                 ARGV[2]  its fingerprint
//	                                 ARGV[3]  the channel
//	                                 ARGV[4]  when the record expires, Unix ms; "" for never
//
// A stored record that decode would refuse (not JSON, another fingerprint's,
// an unknown state, an epoch that is not a canonical decimal or is past
// maxEpoch, reset fields that are not numbers) is left as it is, and the
// script fails.
//
// newer(new, old) is true exactly when credpool's old.Merge(new) returns
// new: a later epoch; within an epoch, disabled over dead over exhausted over ok; then the
// later reset time; then the greater reason, by bytes. Strings are compared
// by bytes, as Go does, not with Lua's locale-dependent <; epochs are
// canonical decimals, so the longer is the greater.
var saveScript = redis.NewScript(`
local maxEpoch = '` + strconv.FormatUint(maxEpoch, 10) + `'
local function bytecmp(a, b)
  if a == b then return 0 end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      if x < y then return -1 end
      return 1
    end
  end
  if #a < #b then return -1 end
  return 1
end
local function numcmp(a, b)
  if #a ~= #b then
    if #a < #b then return -1 end
    return 1
  end
  return bytecmp(a, b)
end
local rank = {ok = 0, exhausted = 1, dead = 2, disabled = 3}
local function valid(r, fp)
  return type(r) == 'table' and r.fingerprint == fp and type(r.state) == 'string' and rank[r.state] ~= nil
    and type(r.epoch) == 'string' and (r.epoch == '0' or string.find(r.epoch, '^[1-9]%d*$') ~= nil)
    and numcmp(r.epoch, maxEpoch) <= 0
    and type(r.reset_s) == 'number' and type(r.reset_ns) == 'number'
    and (r.reason == nil or type(r.reason) == 'string')
end
local function newer(new, old)
  local c = numcmp(new.epoch, old.epoch)
  if c ~= 0 then return c > 0 end
  local rn, ro = rank[new.state], rank[old.state]
  if rn ~= ro then return rn > ro end
  if new.reset_s ~= old.reset_s then return new.reset_s > old.reset_s end
  if new.reset_ns ~= old.reset_ns then return new.reset_ns > old.reset_ns end
  return bytecmp(new.reason or '', old.reason or '') > 0
end

local merged = ARGV[1]
local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, old = pcall(cjson.decode, stored)
  if not ok or not valid(old, ARGV[2]) then
    return redis.error_reply('credpool: corrupt record at ' .. KEYS[1])
  end
  if not newer(cjson.decode(ARGV[1]), old) then
    merged = stored
  end
end
if merged ~= stored then
  redis.call('SET', KEYS[1], merged)
  if ARGV[4] ~= '' then
    redis.call('PEXPIREAT', KEYS[1], ARGV[4])
  end
end
redis.call('PUBLISH', ARGV[3], merged)
return merged
`)
