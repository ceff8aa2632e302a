package credpool

import (
	"container/heap"
	"time"
)

// coolingHeap holds the keys that cool, soonest reset first (container/heap
// does the sifting), so the pool finds the keys whose cooldown ended without
// scanning, and reads the clock only when some key cools at all. It is
// guarded by the pool's mutex.
type coolingHeap struct {
	keys  []int32
	pos   []int32 // key -> index in keys, -1 if absent
	slots []slot  // the pool's, for the reset times
}

// set adds key i, or moves it after its reset time changed.
func (c *coolingHeap) set(i int) {
	if p := c.pos[i]; p >= 0 {
		heap.Fix(c, int(p))
		return
	}
	heap.Push(c, int32(i))
}

func (c *coolingHeap) remove(i int) {
	if p := c.pos[i]; p >= 0 {
		heap.Remove(c, int(p))
	}
}

// expired removes and returns the key with the soonest reset, if that reset
// is not after now; -1 otherwise.
func (c *coolingHeap) expired(now time.Time) int {
	if len(c.keys) == 0 || c.slots[c.keys[0]].resetAt.After(now) {
		return -1
	}
	return int(heap.Pop(c).(int32))
}

// Len, Less, Swap, Push and Pop implement heap.Interface.
func (c *coolingHeap) Len() int { return len(c.keys) }
func (c *coolingHeap) Less(a, b int) bool {
	return c.slots[c.keys[a]].resetAt.Before(c.slots[c.keys[b]].resetAt)
}
func (c *coolingHeap) Swap(a, b int) {
	c.keys[a], c.keys[b] = c.keys[b], c.keys[a]
	c.pos[c.keys[a]], c.pos[c.keys[b]] = int32(a), int32(b)
}
func (c *coolingHeap) Push(x any) {
	i := x.(int32)
	c.pos[i] = int32(len(c.keys))
	c.keys = append(c.keys, i)
}
func (c *coolingHeap) Pop() any {
	i := c.keys[len(c.keys)-1]
	c.keys = c.keys[:len(c.keys)-1]
	c.pos[i] = -1
	return i
}
