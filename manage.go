package credpool

import (
	"context"
	"fmt"
)

// This file is what a person does to the keys: reset them, disable and
// enable them, and replace them (see SetKeys). Each takes effect at once,
// for requests in flight too: a verdict on an attempt sent before the
// change is ignored. They are serialized with SetKeys (the keyring's lock),
// so that none lands on a generation of keys that is being replaced.

// Reset puts every key back in rotation, dead ones included. A verdict on an
// attempt sent before Reset is ignored, so a late response cannot kill a key
// that was just revived.
func (t *Transport) Reset() {
	if t.pool() == nil {
		return
	}
	t.ring.mu.Lock()
	changes := t.pool().reset()
	t.ring.mu.Unlock()
	for _, c := range changes {
		t.emit(context.Background(), c)
	}
}

// ResetKey puts the key at index (its position in the slice given to New or
// SetKeys) back in rotation, as Reset does for every key: after rotating one
// secret, or from a status page. A disabled key stays disabled.
func (t *Transport) ResetKey(index int) error {
	return t.manage("ResetKey", index, func(p *pool) []StateChange { return p.reset(index) })
}

// DisableKey takes the key at index out of rotation until EnableKey, whatever
// its state: for a key an operator knows is compromised, over budget or
// about to be rotated. No automatic path revives a disabled key, neither a
// cooldown's end, a re-check (WithRecheck) nor Reset, and with a Store the
// decision holds for every replica.
func (t *Transport) DisableKey(index int) error {
	return t.manage("DisableKey", index, func(p *pool) []StateChange { return p.disable(index) })
}

// EnableKey puts a disabled key back in rotation, with a clean past as after
// ResetKey. A key that is not disabled is left as it is.
func (t *Transport) EnableKey(index int) error {
	return t.manage("EnableKey", index, func(p *pool) []StateChange { return p.enable(index) })
}

// manage applies an operator's change to the key at index, and emits what it
// changed.
func (t *Transport) manage(name string, index int, change func(*pool) []StateChange) error {
	if t.pool() == nil {
		return errNotNew
	}
	t.ring.mu.Lock()
	p := t.pool()
	if index < 0 || index >= len(p.slots) {
		t.ring.mu.Unlock()
		return fmt.Errorf("credpool: %s: no key at index %d (the pool has %d)", name, index, len(p.slots))
	}
	changes := change(p)
	t.ring.mu.Unlock()
	for _, c := range changes {
		t.emit(context.Background(), c)
	}
	return nil
}
