// naive.go is the pool the comparison measures credpool against: the key
// rotation teams write by hand, before they meet the cases credpool exists
// for.

package demo

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/credpool/credpool"
)

const (
	// naiveCooldown is how long any failure takes a key out of rotation.
	naiveCooldown = 5 * time.Minute
	// naiveAttempts is how many keys a request tries: as many attempts as
	// credpool's default allows (one, and WithMaxRetries' 3).
	naiveAttempts = 4
)

// errAllCooling is what the naive pool says when every key cools.
var errAllCooling = errors.New("naive pool: every key is cooling down")

// naivePool is round robin over the keys, where every failure of any kind
// (a 401, a 429, a 529, a network error) puts the key on a five-minute
// cooldown, after which it is back in rotation. A request moves on to the
// next key at once, up to naiveAttempts keys, and fails at once when every
// key cools: it never waits, and it ignores Retry-After.
//
// So a revoked key is tried again every five minutes all day, a key out of
// credit is probed every five minutes until its credit renews, and while the
// provider is overloaded, its 529s take healthy keys out of rotation until
// none is left.
type naivePool struct {
	keys     []string
	base     http.RoundTripper
	clock    clock
	onChange func(key int, state credpool.State, at time.Duration)

	mu    sync.Mutex
	next  int             // where round robin looks first
	until []time.Duration // end of each key's cooldown
}

func newNaivePool(keys []string, base http.RoundTripper, c clock, onChange func(int, credpool.State, time.Duration)) *naivePool {
	return &naivePool{keys: keys, base: base, clock: c, onChange: onChange, until: make([]time.Duration, len(keys))}
}

// RoundTrip sends req with the next key not cooling, and on a failure
// with the one after, up to naiveAttempts keys. It returns the last
// failure when none succeeds.
func (p *naivePool) RoundTrip(req *http.Request) (*http.Response, error) {
	var resp *http.Response
	var err error = errAllCooling
	for range naiveAttempts {
		i, ok := p.pick()
		if !ok {
			break
		}
		if resp != nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		resp, err = p.send(req, i)
		if err == nil && resp.StatusCode < 400 {
			return resp, nil
		}
		p.cool(i)
	}
	if resp != nil {
		return resp, nil
	}
	return nil, err
}

// send sends one attempt of req with key i, on a copy of the request and of
// its body.
func (p *naivePool) send(req *http.Request, i int) (*http.Response, error) {
	r := req.Clone(req.Context())
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	r.Header.Set("Authorization", "Bearer "+p.keys[i])
	return p.base.RoundTrip(r)
}

// pick takes the next key in turn that is not cooling.
func (p *naivePool) pick() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.now()
	for j := range p.keys {
		i := (p.next + j) % len(p.keys)
		if now >= p.until[i] {
			p.next = i + 1
			return i, true
		}
	}
	return 0, false
}

// cool puts key i on its cooldown, and tells onChange that it cools now and
// will be back when the cooldown ends: the naive pool needs no one to notice.
func (p *naivePool) cool(i int) {
	p.mu.Lock()
	now := p.clock.now()
	p.until[i] = now + naiveCooldown
	p.mu.Unlock()
	p.onChange(i, credpool.StateExhausted, now)
	p.onChange(i, credpool.StateOK, now+naiveCooldown)
}
