package credpool

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Store shares the keys' states between Transports: the replicas of a
// service, and the same service after a restart. A key killed or cooled by
// one is out of rotation for all, without each failing a user's request to
// find out. States, reasons and reset times are shared; counters stay local.
//
// A Store never sees a key: records are addressed by a fingerprint, an HMAC
// of the key, so a dump of the store leaks nothing usable.
//
// The Transport never calls a Store on a request's path: it loads in the
// background, writes from a background goroutine, and keeps working on its
// own state while the store is slow or down.
type Store interface {
	// Save merges r into the stored record of its key (see Record.Merge),
	// and lets watchers know.
	Save(ctx context.Context, r Record) error
	// Watch calls apply with every stored record, once it is watching, and
	// then with every record saved from then on, by anyone, until ctx ends
	// or the store fails. It returns ctx's error or the failure; the
	// Transport then calls it again after a pause, which catches up with
	// whatever was missed. apply may see a record more than once.
	Watch(ctx context.Context, apply func(Record)) error
}

// Record is one key's shared state.
type Record struct {
	Key     string    `json:"key"` // the key's fingerprint, never the key
	State   State     `json:"state"`
	Reason  Reason    `json:"reason,omitempty"`
	ResetAt time.Time `json:"reset_at,omitempty"` // end of a cooldown; zero otherwise
	Epoch   uint64    `json:"epoch"`              // Resets the key has had: a later Reset wins
}

// stateRank orders states within an epoch: a stale "ok" never resurrects a
// dead key, and never cuts a cooldown short.
var stateRank = map[State]int{StateOK: 0, StateExhausted: 1, StateDead: 2}

// Merge returns which of r and o, two records of one key, holds: the later
// epoch (a Reset is an event, not just "ok"); within an epoch, dead over
// exhausted over ok; of two cooldowns, the later deadline. Merge is
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
	return func(c *config) {
		if s == nil {
			c.invalid("WithStore: nil Store")
			return
		}
		c.store = s
	}
}

// WithStoreSalt sets the salt of the keys' fingerprints in the store. Every
// replica sharing a store must use the same salt.
func WithStoreSalt(salt []byte) Option {
	return func(c *config) {
		if len(salt) == 0 {
			c.invalid("WithStoreSalt: empty salt")
			return
		}
		c.salt = append([]byte(nil), salt...)
	}
}
