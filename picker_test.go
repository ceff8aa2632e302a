package credpool

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPickersAgainstModel drives every picker through random adds, removes
// and picks, and checks each pick against a plain model of the strategy.
func TestPickersAgainstModel(t *testing.T) {
	const n = 200
	for _, s := range []Strategy{RoundRobin, FillFirst, LeastUsed, Random} {
		t.Run(s.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(s)))
			p := newPicker(s, n)
			in := map[int]bool{}
			count := map[int]uint64{}
			for step := 0; step < 20000; step++ {
				i := rng.IntN(n)
				switch op := rng.IntN(10); {
				case op < 2:
					if !in[i] && s == LeastUsed {
						count[i] = minCount(in, count)
					}
					p.add(i)
					in[i] = true
					publish(p)
				case op < 4:
					p.remove(i)
					delete(in, i)
					publish(p)
				default:
					avoid := -1
					if rng.IntN(2) == 0 {
						avoid = i
					}
					got := p.pick(avoid)
					if len(in) == 0 {
						require.Equal(t, -1, got)
						continue
					}
					require.True(t, in[got], "step %d: picked %d, not a member", step, got)
					if len(in) > 1 {
						require.NotEqual(t, avoid, got, "step %d: picked the key to avoid", step)
					}
					switch s {
					case FillFirst:
						require.Equal(t, lowest(in, avoid), got, "step %d", step)
					case LeastUsed:
						require.Equal(t, count[got], minCountExcept(in, count, avoid), "step %d", step)
						count[got]++
					}
					p.used(got)
				}
			}
		})
	}
}

// publish does what the pool does after every change under its lock.
func publish(p picker) {
	if r, ok := p.(*roster); ok {
		r.publish()
	}
}

func lowest(in map[int]bool, avoid int) int {
	best := -1
	for k := range in {
		if k != avoid && (best < 0 || k < best) {
			best = k
		}
	}
	if best < 0 {
		return avoid
	}
	return best
}

func minCount(in map[int]bool, count map[int]uint64) uint64 {
	return minCountExcept(in, count, -1)
}

func minCountExcept(in map[int]bool, count map[int]uint64, avoid int) uint64 {
	first, m := true, uint64(0)
	for k := range in {
		if k != avoid && (first || count[k] < m) {
			first, m = false, count[k]
		}
	}
	if first {
		return count[avoid]
	}
	return m
}

func TestRoundRobinVisitsEveryMember(t *testing.T) {
	p := newPicker(RoundRobin, 10)
	for i := 0; i < 10; i++ {
		p.add(i)
	}
	p.remove(3)
	p.remove(7)
	publish(p)
	seen := map[int]int{}
	for i := 0; i < 80; i++ {
		k := p.pick(-1)
		p.used(k)
		seen[k]++
	}
	assert.Len(t, seen, 8)
	for k, c := range seen {
		assert.Equal(t, 10, c, "key %d", k)
	}
}

func TestCoolingHeapOrder(t *testing.T) {
	slots := make([]slot, 5)
	c := coolingHeap{pos: filled(5), slots: slots}
	base := time.Now()
	for i, d := range []int{5, 1, 4, 2, 3} {
		slots[i].resetAt = base.Add(time.Duration(d) * time.Second)
		c.set(i)
	}
	slots[2].resetAt = base // key 2's cooldown shortened: moves to the front
	c.set(2)
	c.remove(3)
	var order []int
	for i := c.expired(base.Add(time.Hour)); i >= 0; i = c.expired(base.Add(time.Hour)) {
		order = append(order, i)
	}
	assert.Equal(t, []int{2, 1, 4, 0}, order)
	assert.Equal(t, -1, c.expired(base.Add(time.Hour)))
}
