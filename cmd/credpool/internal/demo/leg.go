// leg.go plays the day's traffic through one pool and keeps what happened:
// each key's state changes, every attempt the provider answered, and the
// requests that failed.

package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/credpool/credpool"
)

// chatPath is where the day's requests go.
const chatPath = "/v1/chat/completions"

// leg is what one pool did with the day.
type leg struct {
	name     string          // as a heading: "The naive pool", "credpool"
	changes  []change        // key state changes, by time
	attempts []attempt       // as the provider answered them
	failed   []time.Duration // when each request that failed was sent
	waited   time.Duration   // simulated time requests spent waiting inside the pool
	took     time.Duration   // real time the day took to play
	late     time.Duration   // the most a request went out after its time, simulated
}

// change is a key changing state at a moment of the day.
type change struct {
	key   int
	at    time.Duration
	state credpool.State
}

// changeLog collects changes from the pools' callbacks.
type changeLog struct {
	mu      sync.Mutex
	changes []change
}

func (l *changeLog) add(key int, state credpool.State, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, change{key: key, at: at, state: state})
}

// sorted returns the changes by time; changes at the same moment keep
// their order.
func (l *changeLog) sorted() []change {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := slices.Clone(l.changes)
	slices.SortStableFunc(c, func(a, b change) int { return int(a.at - b.at) })
	return c
}

// drive sends the day's traffic through client, one request at a time: wait
// brings the pool's clock to each request's time before it is sent, and
// returns the time the clock says. It returns when each request that failed
// was sent, on that clock.
func drive(ctx context.Context, client *http.Client, endpoint string, sc *scenario, wait func(context.Context, time.Duration) (time.Duration, error)) ([]time.Duration, error) {
	var failed []time.Duration
	for n := range sc.requests {
		now, err := wait(ctx, sc.sendAt(n))
		if err != nil {
			return nil, err
		}
		if !send(ctx, client, endpoint, n) {
			failed = append(failed, now)
		}
	}
	return failed, ctx.Err()
}

// send sends request n of the traffic and reports whether it got its
// completion.
func send(ctx context.Context, client *http.Client, endpoint string, n int) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(fmt.Sprintf(chatRequestBody, n)))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(requestHeader, fmt.Sprint(n))
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}
