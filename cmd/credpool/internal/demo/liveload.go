// liveload.go sends the live demo's load: concurrent chat completions through
// the pool, and the tally of how they ended.

package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// outcome is how one request ended: a status, or an error.
type outcome struct {
	status int
	err    error
}

// sendAll sends n chat completions to endpoint, c at a time, and returns a
// channel of their outcomes that is closed when all are done. Once ctx ends,
// the requests left end at once with its error.
func sendAll(ctx context.Context, client *http.Client, endpoint string, n, c int) <-chan outcome {
	jobs := make(chan int)
	results := make(chan outcome, c)
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				results <- chat(ctx, client, endpoint, i)
			}
		}()
	}
	go func() {
		for i := range n {
			jobs <- i
		}
		close(jobs)
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	return results
}

// chat sends one chat completion request and reads its answer. The request
// carries no key: the Transport adds one.
func chat(ctx context.Context, client *http.Client, endpoint string, i int) outcome {
	body := fmt.Sprintf(chatRequestBody, i)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return outcome{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return outcome{status: resp.StatusCode}
	}
	var completion struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&completion); err != nil {
		return outcome{status: resp.StatusCode, err: fmt.Errorf("reading completion: %w", err)}
	}
	if len(completion.Choices) == 0 || completion.Choices[0].Message.Content == "" {
		return outcome{status: resp.StatusCode, err: errors.New("completion has no message")}
	}
	return outcome{status: resp.StatusCode}
}

// tally counts outcomes.
type tally struct {
	done, ok int
	byStatus map[int]int    // non-200 responses handed back, by status
	errs     map[string]int // errors, by message
}

func (t *tally) add(o outcome) {
	t.done++
	switch {
	case o.err != nil:
		t.errs[o.err.Error()]++
	case o.status != http.StatusOK:
		t.byStatus[o.status]++
	default:
		t.ok++
	}
}

func (t *tally) failed() int { return t.done - t.ok }

func (t *tally) errCount() int {
	n := 0
	for _, count := range t.errs {
		n += count
	}
	return n
}

// collect tallies outcomes until the channel closes, keeping the progress
// display up to date.
func collect(results <-chan outcome, p *progress) tally {
	t := tally{byStatus: map[int]int{}, errs: map[string]int{}}
	var tick <-chan time.Time
	if p.con.tty {
		ticker := time.NewTicker(100 * time.Millisecond)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		select {
		case o, more := <-results:
			if !more {
				p.finish(t)
				return t
			}
			t.add(o)
			p.step(t)
		case <-tick:
			p.redraw(t)
		}
	}
}
