// liveprovider.go is the live demo's simulated provider: an in-process,
// OpenAI-style API on loopback that knows the five made-up keys (one
// revoked, one out of quota, one rate-limited now and then, two healthy that
// are sometimes overloaded), and the watch that proves the revoked key got
// no request once it was killed.

package demo

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/credpool/credpool"
)

// liveProvider is an in-process stand-in for an OpenAI-compatible API. It
// counts the requests it sees per key, so the demo can prove a dead key never
// returns.
type liveProvider struct {
	index   map[string]int // key -> position in keys
	kinds   []keyKind
	answers atomic.Int64 // successful answers, for the occasional 503

	mu   sync.Mutex
	seen []int // requests per key
}

func newLiveProvider(keys []demoKey) *liveProvider {
	p := &liveProvider{index: make(map[string]int, len(keys)), seen: make([]int, len(keys))}
	for i, k := range keys {
		p.index[k.key] = i
		p.kinds = append(p.kinds, k.kind)
	}
	return p
}

func (p *liveProvider) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", p.chatCompletions)
	return mux
}

// chatCompletions authenticates the key, checks the request body (which also
// proves that a replayed request arrives whole), and answers as the key's
// kind says.
func (p *liveProvider) chatCompletions(w http.ResponseWriter, r *http.Request) {
	key, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	i, known := p.index[key]
	if !bearer || !known { // OpenAI answers an unknown key as it does a revoked one
		writeBody(w, http.StatusUnauthorized, revokedBody)
		return
	}
	nth := p.count(i)
	if !validChat(r.Body) {
		writeBody(w, http.StatusBadRequest, badRequestBody)
		return
	}
	switch p.kinds[i] {
	case revoked:
		writeBody(w, http.StatusUnauthorized, revokedBody)
	case noQuota:
		writeBody(w, http.StatusTooManyRequests, noQuotaBody)
	case rateLimited:
		if nth%4 == 0 {
			w.Header().Set("Retry-After", "1")
			writeBody(w, http.StatusTooManyRequests, rateLimitBody)
			return
		}
		p.complete(w)
	default:
		p.complete(w)
	}
}

// count records a request with key i and returns how many it has now had.
func (p *liveProvider) count(i int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[i]++
	return p.seen[i]
}

// snapshot returns the requests seen so far, per key.
func (p *liveProvider) snapshot() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

// complete answers a chat completion after a few milliseconds of "thinking",
// except every 40th answer, which is a 503 overload.
func (p *liveProvider) complete(w http.ResponseWriter) {
	n := p.answers.Add(1)
	if n%40 == 0 {
		writeBody(w, http.StatusServiceUnavailable, overloadedBody)
		return
	}
	time.Sleep(2*time.Millisecond + rand.N(8*time.Millisecond))
	writeBody(w, http.StatusOK, fmt.Sprintf(completionBody, n, time.Now().Unix()))
}

// deathWatch records the moment the watched key is killed: how many attempts
// the Transport had sent with it by then, and how many requests the provider
// had seen per key. Attempts already in flight may reach the provider after
// the kill is announced; anything beyond the attempts sent before the kill
// would be a request sent with a dead key.
type deathWatch struct {
	prov  *liveProvider
	index int // the key watched

	mu     sync.Mutex
	dead   bool
	change credpool.StateChange
	sent   uint64 // attempts sent with the key before it was killed
	atKill []int  // provider's count per key when the kill was announced
}

// killed records the watched key's death.
func (d *deathWatch) killed(c credpool.StateChange, sent uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return
	}
	d.dead, d.change, d.sent, d.atKill = true, c, sent, d.prov.snapshot()
}

// deathReport is what the provider saw of a killed key, after the fact.
type deathReport struct {
	change    credpool.StateChange
	afterKill []int // requests per key the provider saw after the kill
	inFlight  int   // of the dead key's, those sent before the kill that arrived after it
	sentAfter int   // of the dead key's, those sent after the kill: must be 0
}

// report compares the provider's final counts with the moment of the kill.
// ok is false if the watched key was not killed.
func (d *deathWatch) report() (r deathReport, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.dead {
		return r, false
	}
	final := d.prov.snapshot()
	r.change = d.change
	r.afterKill = make([]int, len(final))
	for i := range final {
		r.afterKill[i] = final[i] - d.atKill[i]
	}
	i := d.index
	r.sentAfter = max(final[i]-int(d.sent), 0)
	r.inFlight = r.afterKill[i] - r.sentAfter
	return r, true
}
