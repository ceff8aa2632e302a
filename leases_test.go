package credpool

import (
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// TestHotStateFillsOneCacheLine holds the layout the success path relies on:
// each key's hot state is exactly one 64-byte cache line, so that keys side
// by side in the slice never share one.
func TestHotStateFillsOneCacheLine(t *testing.T) {
	assert.Equal(t, uintptr(64), unsafe.Sizeof(hot{}))
}

// TestGenerationsAreDistinct checks that a Reset or refresh makes verdicts on
// earlier leases stale, and only on earlier ones.
func TestGenerationsAreDistinct(t *testing.T) {
	tr := newTransport(t, []string{keyA, keyB})
	p := tr.pool()
	l, _, ok := p.acquire(-1, time.Now)
	assert.True(t, ok)
	assert.True(t, p.current(l))
	p.mu.Lock()
	p.renew(l.index, "")
	p.mu.Unlock()
	assert.False(t, p.current(l), "a lease from before the new generation is stale")
	again := p.lease(l.index)
	assert.True(t, p.current(again))
	assert.Equal(t, l.value(), again.value(), "renewing without a new value keeps the key")

	p.mu.Lock()
	p.renew(l.index, "Bearer refreshed")
	p.mu.Unlock()
	assert.Equal(t, []string{"Bearer refreshed"}, p.lease(l.index).value())
}
