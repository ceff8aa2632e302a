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
			p := newPicker(s, n, nil, nil)
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
	p := newPicker(RoundRobin, 10, nil, nil)
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

func TestStrategies(t *testing.T) {
	keys := []string{keyA, keyB, keyC}
	cases := []struct {
		strategy Strategy
		check    func(t *testing.T, seen []string)
	}{
		{
			strategy: FillFirst,
			check: func(t *testing.T, seen []string) {
				for _, k := range seen {
					assert.Equal(t, keyA, k)
				}
			},
		},
		{
			strategy: RoundRobin,
			check: func(t *testing.T, seen []string) {
				for i, k := range seen {
					assert.Equal(t, keys[i%3], k)
				}
			},
		},
		{
			strategy: LeastUsed,
			check: func(t *testing.T, seen []string) {
				counts := map[string]int{}
				for _, k := range seen {
					counts[k]++
				}
				assert.Equal(t, map[string]int{keyA: 10, keyB: 10, keyC: 10}, counts)
			},
		},
		{
			strategy: Random,
			check: func(t *testing.T, seen []string) {
				counts := map[string]int{}
				for _, k := range seen {
					counts[k]++
				}
				assert.Len(t, counts, 3, "every key is drawn over 30 requests")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.strategy.String(), func(t *testing.T) {
			p := newProvider(t, nil)
			tr := newTransport(t, keys, WithStrategy(tc.strategy))
			for i := 0; i < 30; i++ {
				get(t, tr, p.URL)
			}
			tc.check(t, p.keys())
		})
	}
}

func TestStrategiesSkipUnusableKeys(t *testing.T) {
	for _, s := range []Strategy{RoundRobin, FillFirst, LeastUsed, Random} {
		t.Run(s.String(), func(t *testing.T) {
			p := newProvider(t, func(key string, _ int) reply {
				if key == keyB {
					return reply{status: 401, body: bodyInvalidKey}
				}
				return reply{status: 200, body: "ok"}
			})
			tr := newTransport(t, []string{keyA, keyB, keyC}, WithStrategy(s))
			for i := 0; i < 20; i++ {
				status, _ := get(t, tr, p.URL)
				require.Equal(t, 200, status)
			}
			assert.LessOrEqual(t, p.count(keyB), 1, "a dead key is never chosen again")
		})
	}
}
