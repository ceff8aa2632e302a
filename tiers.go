package credpool

import (
	"cmp"
	"math"
	"slices"
)

// Tiers and weights: "use the free keys first, and the paid ones only as
// overflow", and "80% on the cheap key". A pool with neither publishes and
// picks exactly as before; see picker.go.

// WithTiers puts the keys in tiers: tiers[i] is the tier of the key at index
// i (its position in the slice given to New). Requests go to the lowest tier
// that has a usable key, spread within it by the pool's strategy; a higher
// tier serves only while every key below it is dead or cooling, and the lower
// tier takes over again as soon as one of its keys is back. New refuses a
// list whose length is not the number of keys.
func WithTiers(tiers ...int) KeyOption {
	return keyOptionFunc(func(c *config) { c.tiers = slices.Clone(tiers) })
}

// WithWeights weights the keys: weights[i] is the share of requests the key
// at index i gets among the usable keys of its tier, as a fraction of their
// sum (0.8 and 0.2, or 4 and 1, send four requests in five to the first
// key). RoundRobin honours the weights exactly over time and closely at any
// moment; Random honours them on average; FillFirst takes keys in order and
// LeastUsed evens out counts, so neither uses them. A weight must be positive
// and finite; New refuses a list whose length is not the number of keys.
func WithWeights(weights ...float64) KeyOption {
	return keyOptionFunc(func(c *config) {
		for i, w := range weights {
			if !(w > 0) || math.IsInf(w, 0) {
				c.invalid("WithWeights: weight %v of key %d is not positive and finite", w, i)
				return
			}
		}
		c.weights = slices.Clone(weights)
	})
}

// lowestTier is the lowest tier among the keys in in; 0 without tiers.
func lowestTier(in []bool, tiers []int) int {
	lowest, found := 0, false
	if tiers == nil {
		return lowest
	}
	for i, ok := range in {
		if ok && (!found || tiers[i] < lowest) {
			lowest, found = tiers[i], true
		}
	}
	return lowest
}

// tieredQueue is LeastUsed in tiers: a queue per tier, lowest first, and a
// choice from the lowest tier that has a usable key.
type tieredQueue struct {
	queues []*queue // by tier, lowest first
	of     []int    // key -> its tier's place in queues
}

func newTieredQueue(n int, tiers []int) *tieredQueue {
	levels := slices.Compact(slices.Sorted(slices.Values(tiers)))
	t := &tieredQueue{queues: make([]*queue, len(levels)), of: make([]int, n)}
	for i := range t.queues {
		t.queues[i] = newQueue(n)
	}
	for i, tier := range tiers {
		t.of[i], _ = slices.BinarySearch(levels, tier)
	}
	return t
}

func (t *tieredQueue) add(i int)    { t.queues[t.of[i]].add(i) }
func (t *tieredQueue) remove(i int) { t.queues[t.of[i]].remove(i) }
func (t *tieredQueue) used(i int)   { t.queues[t.of[i]].used(i) }

func (t *tieredQueue) each(yield func(int) bool) {
	for _, q := range t.queues {
		stopped := false
		q.each(func(i int) bool {
			stopped = !yield(i)
			return !stopped
		})
		if stopped {
			return
		}
	}
}

// byTier returns the indexes of n keys, lowest tier first, and within a
// tier in the order given to New.
func byTier(n int, tiers []int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if tiers != nil {
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(tiers[a], tiers[b]) })
	}
	return order
}

func (t *tieredQueue) pick(avoid int) int {
	for _, q := range t.queues {
		if i := q.pick(avoid); i >= 0 {
			return i
		}
	}
	return -1
}
