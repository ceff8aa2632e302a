package credpool

import (
	"math/rand/v2"
	"sync/atomic"
)

// picker chooses among the usable keys by one strategy. The pool tells it
// when a key enters or leaves the usable set, so that a choice never scans the
// pool: with 10,000 keys, most of them dead or cooling, a choice still costs
// the same as with one. Pickers are guarded by the pool's mutex, except for
// roster's pick, which is safe without it.
type picker interface {
	add(i int)          // key i became usable
	remove(i int)       // key i is no longer usable
	pick(avoid int) int // a usable key, other than avoid if there is one; -1 if none
	used(i int)         // key i was just chosen
}

func newPicker(s Strategy, n int) picker {
	if s == LeastUsed {
		return newQueue(n)
	}
	return &roster{strategy: s, in: make([]bool, n), dirty: true}
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
	in       []bool // under the pool's lock
	dirty    bool   // in changed since the last publish
	list     atomic.Pointer[[]int32]
	turn     atomic.Uint64 // RoundRobin's count of choices
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
	list := make([]int32, 0, len(r.in))
	for i, in := range r.in {
		if in {
			list = append(list, int32(i))
		}
	}
	r.list.Store(&list)
	r.dirty = false
}

// pick chooses from the published list; it needs no lock.
func (r *roster) pick(avoid int) int {
	published := r.list.Load()
	if published == nil {
		return -1
	}
	list := *published
	n := len(list)
	if n == 0 {
		return -1
	}
	var j int
	switch {
	case n == 1 || r.strategy == FillFirst:
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

// used moves key i to the back.
func (q *queue) used(i int) {
	if q.head == int32(i) {
		q.head = q.next[i] // the ring turns: i is now last
		return
	}
	q.remove(i)
	q.insertBeforeHead(int32(i))
}
