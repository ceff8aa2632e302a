// dayprovider.go is the simulated provider of the comparison: an
// OpenAI-style API, served in process (see inProcess), that answers each
// attempt as the scenario says, and records every attempt, for the numbers
// and the timelines.

package demo

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// requestHeader numbers each request of the day's traffic. Both pools pass
// it through, on every attempt, so the provider knows which request an
// attempt serves and when it was sent.
const requestHeader = "Demo-Request"

// attempt is one attempt the provider answered.
type attempt struct {
	request int           // which request of the traffic
	key     int           // index in demoKeys
	at      time.Duration // when it was answered, on the pool's clock
	status  int
}

func (a attempt) failed() bool { return a.status != http.StatusOK }

// dayProvider answers by the scenario. A key's trouble is judged at the
// moment its clock says, the clock the pool under test reads too: credpool
// is told a rate limit ends at a time on its clock, and the provider must
// agree with it when it comes back. Overloads are judged by when the request
// was sent, and the luck of each try, so that both pools meet the same ones.
type dayProvider struct {
	sc    *scenario
	clock clock
	index map[string]int

	mu       sync.Mutex
	draws    map[int]int // overload draws so far, per request
	attempts []attempt
}

func newDayProvider(sc *scenario, c clock) *dayProvider {
	return &dayProvider{sc: sc, clock: c, index: keyIndex(), draws: map[int]int{}}
}

func (p *dayProvider) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", p.chatCompletions)
	return mux
}

// chatCompletions authenticates the key, checks the request, and answers as
// the scenario says. Retry-After is in seconds of the pool's clock.
func (p *dayProvider) chatCompletions(w http.ResponseWriter, r *http.Request) {
	key, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	i, known := p.index[key]
	n, err := strconv.Atoi(r.Header.Get(requestHeader))
	switch {
	case !bearer || !known:
		writeBody(w, http.StatusUnauthorized, revokedBody)
		return
	case err != nil || n < 0 || n >= p.sc.requests || !validChat(r.Body):
		writeBody(w, http.StatusBadRequest, badRequestBody)
		return
	}
	now := p.clock.now()
	status, body, retryAfter := p.sc.keyTrouble(i, now)
	p.mu.Lock()
	if status == 0 {
		if status = p.sc.overloaded(n, p.draws[n]); status != 0 {
			body = overloadedBody
		}
		p.draws[n]++
	}
	if status == 0 {
		status, body = http.StatusOK, dayCompletionBody
	}
	p.attempts = append(p.attempts, attempt{request: n, key: i, at: now, status: status})
	p.mu.Unlock()
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatFloat(p.clock.scale(retryAfter).Seconds(), 'f', -1, 64))
	}
	writeBody(w, status, body)
}

// log returns every attempt answered so far, in the order they came.
func (p *dayProvider) log() []attempt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]attempt(nil), p.attempts...)
}
