package credpool

import (
	"math/bits"
	"math/rand/v2"
)

// picker chooses among the usable keys by one strategy. The pool tells it
// when a key enters or leaves the usable set, so that a choice never scans the
// pool: with 10,000 keys, most of them dead or cooling, a choice still costs
// the same as with one. Pickers are guarded by the pool's mutex.
type picker interface {
	add(i int)          // key i became usable
	remove(i int)       // key i is no longer usable
	pick(avoid int) int // a usable key, other than avoid if there is one; -1 if none
	used(i int)         // key i was just chosen
}

func newPicker(s Strategy, n int) picker {
	switch s {
	case FillFirst:
		return &firstSet{words: make([]uint64, (n+63)/64)}
	case LeastUsed:
		return newQueue(n, true)
	case Random:
		return &members{pos: filled(n)}
	}
	return newQueue(n, false)
}

// filled returns n positions, all -1: no key is in the structure yet.
func filled(n int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = -1
	}
	return p
}

// queue is the usable set in the order keys are to be used, as a ring linked
// through two arrays so every operation is O(1). A chosen key moves to the
// back. For RoundRobin a key that becomes usable joins at the back too; for
// LeastUsed it joins at the front. Since the front key is always one with
// the fewest attempts (each pick adds one, and moves it behind every key
// with fewer), the front is the least used key without a heap: counts of the
// queued keys never differ by more than one.
type queue struct {
	next, prev []int32
	head       int32 // -1 when empty
	front      bool  // new keys join at the front (LeastUsed)
}

func newQueue(n int, front bool) *queue {
	return &queue{next: filled(n), prev: filled(n), head: -1, front: front}
}

func (q *queue) add(i int) {
	if q.next[i] >= 0 {
		return
	}
	q.insertBeforeHead(int32(i))
	if q.front {
		q.head = int32(i)
	}
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

// members is the usable set as a dense list, for Random. Removal swaps the
// last member into the gap, so a draw stays O(1).
type members struct {
	list []int32
	pos  []int32 // key -> index in list, -1 if absent
}

func (m *members) add(i int) {
	if m.pos[i] >= 0 {
		return
	}
	m.pos[i] = int32(len(m.list))
	m.list = append(m.list, int32(i))
}

func (m *members) remove(i int) {
	p := m.pos[i]
	if p < 0 {
		return
	}
	last := m.list[len(m.list)-1]
	m.list[p], m.pos[last] = last, p
	m.list = m.list[:len(m.list)-1]
	m.pos[i] = -1
}

func (m *members) pick(avoid int) int {
	n := len(m.list)
	if n == 0 {
		return -1
	}
	j := rand.IntN(n)
	if int(m.list[j]) == avoid && n > 1 {
		j = (j + 1) % n
	}
	return int(m.list[j])
}

func (m *members) used(int) {}

// firstSet is the usable set as a bitset, for FillFirst: the lowest set bit is
// the first usable key in the order given to New. lo skips the words of keys
// that died or cool at the front, so a dead prefix costs nothing per request.
type firstSet struct {
	words []uint64
	lo    int // no word below lo has a bit set
}

func (f *firstSet) add(i int) {
	f.words[i/64] |= 1 << (i % 64)
	f.lo = min(f.lo, i/64)
}

func (f *firstSet) remove(i int) { f.words[i/64] &^= 1 << (i % 64) }

func (f *firstSet) pick(avoid int) int {
	first := f.next(0)
	if first == avoid && first >= 0 {
		if second := f.next(first + 1); second >= 0 {
			return second
		}
	}
	return first
}

// next returns the first set bit at or after i, or -1.
func (f *firstSet) next(i int) int {
	w := max(i/64, f.lo)
	if w == i/64 {
		if word := f.words[w] >> (i % 64); word != 0 {
			return i + bits.TrailingZeros64(word)
		}
		w++
	}
	for ; w < len(f.words); w++ {
		if f.words[w] != 0 {
			if i == 0 {
				f.lo = w
			}
			return w*64 + bits.TrailingZeros64(f.words[w])
		}
	}
	if i == 0 {
		f.lo = len(f.words)
	}
	return -1
}

func (f *firstSet) used(int) {}
