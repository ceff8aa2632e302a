// replay_test.go tests the bound on the memory that request bodies held for
// replay take (--replay-budget): many large uploads at once stay within it,
// an upload over it that needed a retry gets the upstream's answer with the
// reason, and the client's Content-Length reaches the upstream.

package proxy

import (
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// replayBudget sets the pool's replay budget to n bytes, as the command's
// --replay-budget does.
func replayBudget(n int64) func(*Config) {
	return func(cfg *Config) { cfg.Options = append(cfg.Options, credpool.WithReplayBudget(n)) }
}

// filler is an endless body that costs no memory.
type filler struct{}

func (filler) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'u'
	}
	return len(p), nil
}

// upload sends size bytes to /v1/upload through p, with Content-Length.
func upload(t *testing.T, p *testProxy, size int64) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.URL+"/v1/upload", io.LimitReader(filler{}, size))
	require.NoError(t, err)
	req.ContentLength = size
	resp, err := p.Client().Do(req)
	require.NoError(t, err)
	return resp
}

// heapPeak samples the heap in use until stop is called, which returns the
// most it saw.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done, finished := make(chan struct{}), make(chan struct{})
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapInuse > peak.Load() {
			peak.Store(m.HeapInuse)
		}
	}
	go func() {
		defer close(finished)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				sample()
				return
			case <-tick.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// TestReplayBudgetBoundsMemory sends 30 uploads of 10 MiB at once through a
// proxy with a 16 MiB budget. Buffering every body for replay would take
// 300 MiB; the heap stays within the budget and a margin for everything
// else the test does.
func TestReplayBudgetBoundsMemory(t *testing.T) {
	const (
		uploads = 30
		size    = 10 << 20
		budget  = 16 << 20
		margin  = 100 << 20
	)
	up := fakeapi.NewUpstream(t)
	// Two keys, so that a request can be retried and its body is worth
	// keeping.
	p := startTestProxy(t, up, []string{goodKey, good2Key}, "", replayBudget(16<<20))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	stop := heapPeak()
	var wg sync.WaitGroup
	codes := make([]int, uploads)
	for i := range uploads {
		wg.Go(func() {
			resp := upload(t, p, size)
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	peak := stop()

	for i, code := range codes {
		assert.Equal(t, http.StatusOK, code, "upload %d", i)
	}
	for _, r := range up.Requests() {
		assert.EqualValues(t, size, r.Length, "every upload arrived whole")
	}
	grew := int64(peak) - int64(before.HeapInuse)
	t.Logf("heap in use: %d MiB before, %d MiB at the peak", before.HeapInuse>>20, peak>>20)
	assert.Less(t, grew, int64(budget+margin), "the heap grew by %d MiB", grew>>20)
}

// TestUploadOverBudget sends an upload to a revoked key first: one within
// the budget moves to the next key, one over it cannot be sent again, and
// the client gets the upstream's refusal, with the reason.
func TestUploadOverBudget(t *testing.T) {
	cases := []struct {
		name     string
		size     int64
		want     int
		replayed bool
	}{
		{"within the budget", 512 << 10, http.StatusOK, true},
		{"over the budget", 2 << 20, http.StatusUnauthorized, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := fakeapi.NewUpstream(t)
			p := startTestProxy(t, up, []string{revokedKey, goodKey}, "", replayBudget(1<<20))
			resp := upload(t, p, c.size)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, c.want, resp.StatusCode, "%s", body)
			why := resp.Header.Get(credpool.NotReplayedHeader)
			if c.replayed {
				assert.Empty(t, why)
				assert.Len(t, up.Requests(), 2, "the revoked key, then the good one")
				return
			}
			assert.Contains(t, why, "WithReplayBudget", "the client learns why there was no retry")
			assert.JSONEq(t, fakeapi.RevokedBody, string(body), "the upstream's answer, as it was")
			require.Len(t, up.Requests(), 1)
		})
	}
}

// TestContentLengthReachesUpstream checks that an upload's length goes
// upstream as the client declared it, buffered or not: the core sizes its
// buffer by it, or skips it, without reading the body to find out.
func TestContentLengthReachesUpstream(t *testing.T) {
	for _, size := range []int64{100 << 10, 2 << 20} {
		up := fakeapi.NewUpstream(t)
		p := startTestProxy(t, up, []string{goodKey, good2Key}, "", replayBudget(1<<20))
		resp := upload(t, p, size)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Len(t, up.Requests(), 1)
		r := up.Requests()[0]
		assert.Equal(t, size, r.ContentLength, "%d bytes", size)
		assert.Equal(t, size, r.Length)
	}
}
