// setkeys.go replaces the pool's keys while the proxy serves (a reload of
// --keys-file), and keeps the scrubber ahead of the pool: it knows a new key
// before the pool can send it, and a removed key for as long as the process
// runs, since a response to an attempt sent before the swap may still quote
// it.

package proxy

import (
	"slices"

	"github.com/credpool/credpool"
)

// pendingLabel stands for a new key in the errors handed over while SetKeys
// swaps it in, before the pool has given it its label. The window is the
// swap's; the label only has to hide the key.
const pendingLabel = "[credpool key]"

// SetKeys replaces the pool's keys, as credpool.Transport.SetKeys does: the
// keys that stay keep their state (a dead key stays dead), a new key starts
// in rotation unless the store knows it otherwise, and a KeyOption not given
// keeps its last value. A bad key, no keys, or a KeyOption that does not fit
// the new count is refused, and then nothing changes. The pool logs the keys
// added and removed, by label, through Config.Log.
//
// The scrubber learns the new keys before the pool may send them, and keeps
// every removed key: an attempt sent with it before the swap may still be
// answered with an error that quotes it.
func (p *Server) SetKeys(keys []string, opts ...credpool.KeyOption) error {
	p.keysMu.Lock()
	defer p.keysMu.Unlock()
	before := p.scrub.Load()
	p.scrub.Store(p.scrubberFor(keys))
	if err := p.pool.SetKeys(keys, opts...); err != nil {
		// A body that took the scrubber with the refused keys in it scrubs
		// them too: more than it must, never less.
		p.scrub.Store(before)
		return err
	}
	p.learn(keys)
	return nil
}

// learn records the labels the pool gave keys, its current keys in order,
// and makes the scrubber of them and of every key removed before. keysMu is
// held, or the Server is not yet shared.
func (p *Server) learn(keys []string) {
	for i, l := range labels(p.pool) {
		if i < len(keys) {
			p.known[keys[i]] = l
		}
	}
	p.scrub.Store(p.scrubberFor(keys))
}

// scrubberFor returns a scrubber of keys, each by its known label or, for a
// key the pool has not labelled yet, pendingLabel, and of every key the pool
// had before and keys leave out, by its last label. The removed keys go in
// sorted, so that the same keys make the same scrubber.
func (p *Server) scrubberFor(keys []string) *scrubber {
	all := slices.Clone(keys)
	current := make(map[string]bool, len(keys))
	for _, k := range keys {
		current[k] = true
	}
	var removed []string
	for k := range p.known {
		if !current[k] {
			removed = append(removed, k)
		}
	}
	slices.Sort(removed)
	all = append(all, removed...)
	names := make([]string, len(all))
	for i, k := range all {
		if l, ok := p.known[k]; ok {
			names[i] = l
		} else {
			names[i] = pendingLabel
		}
	}
	return newScrubber(all, names)
}
