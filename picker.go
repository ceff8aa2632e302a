package credpool

import (
	"math/rand/v2"
	"sort"
	"sync/atomic"
)

// picker chooses among the usable keys by one strategy. The pool tells it
// when a key enters or leaves the usable set, so that a choice never scans the
// pool: with 10,000 keys, most of them dead or cooling, a choice still costs
// the same as with one. Pickers are guarded by the pool's mutex, except for
// roster's pick, which is safe without it.
type picker interface {
	add(i int)                   // key i became usable
	remove(i int)                // key i is no longer usable
	pick(avoid int) int          // a usable key, other than avoid if there is one; -1 if none
	used(i int)                  // key i was just chosen
	each(yield func(i int) bool) // the usable keys, lowest tier first, in the order the strategy prefers
}

// newPicker returns the picker of strategy s for n keys, in tiers (nil for
// none: one tier) and with weights (nil for none: equal), see tiers.go.
func newPicker(s Strategy, n int, tiers []int, weights []float64) picker {
	if s == LeastUsed {
		if tiers != nil {
			return newTieredQueue(n, tiers)
		}
		return newQueue(n)
	}
	return &roster{strategy: s, in: make([]bool, n), dirty: true, tier: tiers, weight: weights, order: byTier(n, tiers)}
}

// filled returns n positions, all -1: no key is in the structure yet.
func filled(n int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = -1
	}
	return p
}

// roster is the usable set of RoundRobin, FillFirst and Random: a list of
// the usable keys, in the order given to New, rebuilt under the pool's lock
// on every change and published atomically, so that a choice, the one thing
// every request does, takes no lock at all. Changes are rare; choices are not.
type roster struct {
	strategy Strategy
	tier     []int     // each key's tier; nil for one tier
	weight   []float64 // each key's weight; nil for equal weights
	in       []bool    // under the pool's lock
	order    []int     // every key, lowest tier first, then in the order given to New
	dirty    bool      // in changed since the last publish
	list     atomic.Pointer[view]
	turn     atomic.Uint64 // RoundRobin's count of choices
}

// view is what a roster publishes: the keys a choice is made among (the
// usable keys of the lowest tier that has any), and with weights, their
// running totals.
type view struct {
	keys []int32
	cum  []float64 // cum[j] is the weight of keys[0..j]; nil without weights
}

func (r *roster) add(i int) {
	if !r.in[i] {
		r.in[i], r.dirty = true, true
	}
}

func (r *roster) remove(i int) {
	if r.in[i] {
		r.in[i], r.dirty = false, true
	}
}

// publish makes the changes since the last publish visible to pick.
func (r *roster) publish() {
	if !r.dirty {
		return
	}
	v := &view{keys: make([]int32, 0, len(r.in))}
	lowest := lowestTier(r.in, r.tier)
	for i, in := range r.in {
		if in && (r.tier == nil || r.tier[i] == lowest) {
			v.keys = append(v.keys, int32(i))
		}
	}
	if r.weight != nil && r.strategy != FillFirst {
		v.cum = make([]float64, len(v.keys))
		total := 0.0
		for j, i := range v.keys {
			total += r.weight[i]
			v.cum[j] = total
		}
	}
	r.list.Store(v)
	r.dirty = false
}

// pick chooses from the published list; it needs no lock.
func (r *roster) pick(avoid int) int {
	v := r.list.Load()
	if v == nil {
		return -1
	}
	list := v.keys
	n := len(list)
	if n == 0 {
		return -1
	}
	var j int
	switch {
	case n == 1 || r.strategy == FillFirst:
	case v.cum != nil:
		j = r.weighted(v.cum)
	case r.strategy == Random:
		j = rand.IntN(n)
	default:
		j = int((r.turn.Add(1) - 1) % uint64(n))
	}
	if int(list[j]) == avoid && n > 1 {
		j = (j + 1) % n
	}
	return int(list[j])
}

func (r *roster) used(int) {}

func (r *roster) each(yield func(int) bool) {
	for _, i := range r.order {
		if r.in[i] && !yield(i) {
			return
		}
	}
}

// weighted chooses an index into cum by weight: at random for Random, and
// for RoundRobin at the next point of the golden-ratio sequence (k times the
// golden ratio, modulo one, in 64-bit fixed point), which spreads over [0, 1)
// as evenly as any sequence can: every run of choices holds each key close
// to its share of the weight, fractions included, without a lock.
func (r *roster) weighted(cum []float64) int {
	var x float64
	if r.strategy == Random {
		x = rand.Float64()
	} else {
		k := r.turn.Add(1) - 1
		x = float64((k*0x9e3779b97f4a7c15)>>11) / (1 << 53)
	}
	x *= cum[len(cum)-1]
	return sort.Search(len(cum)-1, func(j int) bool { return cum[j] > x })
}

// queue is LeastUsed's usable set, in the order keys are to be used, as a
// ring linked through two arrays so every operation is O(1). A chosen key
// moves to the back; a key that becomes usable joins at the front. Since the
// front key is always one with the fewest attempts (each pick adds one, and
// moves it behind every key with fewer), the front is the least used key
// without a heap: counts of the queued keys never differ by more than one.
type queue struct {
	next, prev []int32
	head       int32 // -1 when empty
}

func newQueue(n int) *queue {
	return &queue{next: filled(n), prev: filled(n), head: -1}
}

func (q *queue) add(i int) {
	if q.next[i] >= 0 {
		return
	}
	q.insertBeforeHead(int32(i))
	q.head = int32(i)
}

// insertBeforeHead puts i at the back of the ring, or makes it the ring.
func (q *queue) insertBeforeHead(i int32) {
	if q.head < 0 {
		q.next[i], q.prev[i], q.head = i, i, i
		return
	}
	tail := q.prev[q.head]
	q.next[tail], q.prev[i] = i, tail
	q.next[i], q.prev[q.head] = q.head, i
}

func (q *queue) remove(i int) {
	if q.next[i] < 0 {
		return
	}
	n, p := q.next[i], q.prev[i]
	switch {
	case n == int32(i):
		q.head = -1
	default:
		q.next[p], q.prev[n] = n, p
		if q.head == int32(i) {
			q.head = n
		}
	}
	q.next[i], q.prev[i] = -1, -1
}

func (q *queue) pick(avoid int) int {
	if q.head < 0 {
		return -1
	}
	if int(q.head) == avoid {
		return int(q.next[q.head]) // the head itself when it is alone
	}
	return int(q.head)
}

func (q *queue) each(yield func(int) bool) {
	if q.head < 0 {
		return
	}
	for i := q.head; ; {
		if !yield(int(i)) {
			return
		}
		if i = q.next[i]; i == q.head {
			return
		}
	}
}

// used moves key i to the back.
func (q *queue) used(i int) {
	if q.head == int32(i) {
		q.head = q.next[i] // the ring turns: i is now last
		return
	}
	q.remove(i)
	q.insertBeforeHead(int32(i))
}
