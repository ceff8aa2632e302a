package credpool

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Store shares the keys' states between Transports: the replicas of a
// service, and the same service after a restart. A key killed or cooled by
// one is out of rotation for all, without each failing a user's request to
// find out. States, reasons and reset times are shared; counters, strikes and
// the outage guard's suspicion stay local.
//
// A Store never sees a key: records are addressed by a fingerprint, an HMAC
// of the key, so a dump of the store leaks nothing usable.
//
// The Transport never calls a Store on a request's path. New loads the
// stored states before it returns, within WithStoreLoadTimeout; after that a
// background goroutine writes the pool's changes, another watches everyone
// else's and loads again now and then, and the Transport keeps working on
// its own state while the store is slow or down.
type Store interface {
	// Load returns the stored records of keys (fingerprints), in one round
	// trip where the store allows. A record it cannot read (corrupt, or of
	// an unknown state) is left out and reported in the error, while the
	// records it could read are still returned; a store that cannot be
	// read at all returns no record and the error.
	Load(ctx context.Context, keys []string) ([]Record, error)
	// Save merges r into the stored record of its key (see Record.Merge),
	// and lets watchers know.
	Save(ctx context.Context, r Record) error
	// Watch calls apply with the stored record of each of keys once it is
	// watching, and then with every record of those keys saved from then
	// on, by anyone, until ctx ends or the store fails; records it cannot
	// read are skipped. It returns ctx's error or the failure; the
	// Transport then calls it again after a pause, which catches up with
	// whatever was missed. apply may see a record more than once.
	Watch(ctx context.Context, keys []string, apply func(Record)) error
}

// Record is one key's shared state.
type Record struct {
	Fingerprint string    `json:"fingerprint"` // of the key (see Fingerprint), never the key
	State       State     `json:"state"`
	Reason      Reason    `json:"reason,omitempty"`
	ResetAt     time.Time `json:"reset_at,omitempty"` // end of a cooldown; zero otherwise
	Epoch       uint64    `json:"epoch"`              // Resets the key has had: a later Reset wins
}

// maxEpoch is the most Resets a key can have: ResetKey saturates there, and
// a stored record past it is refused. Nobody resets a key four billion
// times; a record that says so is corrupt or hostile, and taken at its word
// it would outrank every later Reset for good.
const maxEpoch = 1 << 32

// check reports what makes r, read from a store as the record of key, not a
// record credpool wrote; nil if nothing does.
func (r Record) check(key string) error {
	switch {
	case r.Fingerprint != key:
		return fmt.Errorf("holds the record of %q", r.Fingerprint)
	case stateRank[r.State] == 0 && r.State != StateOK:
		return fmt.Errorf("unknown state %q", r.State)
	case r.Reason != "" && !knownReason(r.Reason):
		return fmt.Errorf("unknown reason %q", r.Reason)
	case r.Epoch > maxEpoch:
		return fmt.Errorf("epoch %d is past any number of resets", r.Epoch)
	}
	return nil
}

// stateRank orders states within an epoch: a stale "ok" never resurrects a
// dead key, and never cuts a cooldown short. (DisableKey and EnableKey start
// a new epoch, as Reset does; disabled ranks highest so that nothing a key
// could still be blamed for in that epoch outranks the operator.)
var stateRank = map[State]int{StateOK: 0, StateExhausted: 1, StateDead: 2, StateDisabled: 3}

// Merge returns which of r and o, two records of one key, holds: the later
// epoch (a Reset is an event, not just "ok"); within an epoch, disabled over
// dead over exhausted over ok; of two cooldowns, the later deadline. Merge is
// commutative, associative and idempotent, so replicas that see the same
// records in any order agree.
func (r Record) Merge(o Record) Record {
	switch {
	case r.Epoch != o.Epoch:
		if o.Epoch > r.Epoch {
			return o
		}
		return r
	case stateRank[r.State] != stateRank[o.State]:
		if stateRank[o.State] > stateRank[r.State] {
			return o
		}
		return r
	case o.ResetAt.After(r.ResetAt), o.ResetAt.Equal(r.ResetAt) && o.Reason > r.Reason:
		return o
	}
	return r
}

// Fingerprint returns the name a Store knows key by: the first 16 bytes of
// HMAC-SHA-256(salt, key), in hex. Replicas that share a store must share the
// salt (WithStoreSalt).
func Fingerprint(salt []byte, key string) string {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// defaultSalt is the salt without WithStoreSalt: fixed, so replicas agree
// without setup; a salt of your own keeps fingerprints from being compared
// across deployments.
var defaultSalt = []byte("credpool/v1")

// WithStore shares key states through s (see Store). Call Close when done
// with the Transport, to stop its store goroutines.
func WithStore(s Store) Option {
	return optionFunc(func(c *config) {
		if s == nil {
			c.invalid("WithStore: nil Store")
			return
		}
		c.store = s
	})
}

// WithStoreLoadTimeout bounds how long New waits for the stored key states
// before it returns, so that a process that restarts never sends a key the
// store already holds as dead or cooling. A store that cannot be read in
// that time does not stop the service from starting: New returns a working
// Transport on its own state, logs why, and loads in the background. The
// default is 3 s; 0 does not wait.
func WithStoreLoadTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("WithStoreLoadTimeout: negative duration %s", d)
			return
		}
		c.storeLoadTimeout = d
	})
}

// WithStoreSalt sets the salt of the keys' fingerprints in the store. Every
// replica sharing a store must use the same salt.
func WithStoreSalt(salt []byte) Option {
	return optionFunc(func(c *config) {
		if len(salt) == 0 {
			c.invalid("WithStoreSalt: empty salt")
			return
		}
		c.salt = append([]byte(nil), salt...)
	})
}
