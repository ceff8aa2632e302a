// live.go is the live demo: credpool keeping a pool of API keys healthy
// under concurrent load, in real time.
//
// It starts the simulated OpenAI-style provider of liveprovider.go on
// loopback and sends a few hundred concurrent chat completions through an
// http.Client whose Transport is a credpool.Transport over the five made-up
// keys, and shows that:
//
//   - every request succeeds: the revoked key dies on its first 401 and
//     leaves rotation for good, the quota and rate-limited keys cool, and
//     overloaded answers are retried on another key after a short backoff;
//   - each key state change is reported as it happens, by redacted label;
//   - Transport.Keys gives a per-key table of states and counters;
//   - the provider itself saw no request with the dead key after it was
//     killed.

package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/human"
)

// LiveOptions configure Live.
type LiveOptions struct {
	Requests    int // chat completions to send, at least 1
	Concurrency int // requests in flight at once, at least 1
}

// Live runs the live demo: it sends o.Requests chat completions,
// o.Concurrency at a time, through credpool to a simulated provider on
// loopback. It prints each key state change as it happens, then a summary,
// the per-key table and a verdict, to stdout; progress goes to stderr,
// redrawn in place when stderr is a terminal. It returns ErrFailed if a
// request failed or the revoked key did not die and stay dead.
func Live(ctx context.Context, o LiveOptions, stdout, stderr io.Writer) error {
	if o.Requests < 1 || o.Concurrency < 1 {
		return errors.New("demo: Requests and Concurrency must be at least 1")
	}
	prov := newLiveProvider(demoKeys)
	srv := httptest.NewServer(prov.handler())
	defer srv.Close()

	con := newConsole(stdout, stderr)
	watch := &deathWatch{prov: prov, index: indexOf(revoked)}
	t, err := newLiveTransport(srv.URL, o.Concurrency, con, watch)
	if err != nil {
		return err
	}
	defer t.CloseIdleConnections()
	client := &http.Client{Transport: t, Timeout: 5 * time.Second}

	fmt.Fprintf(stdout, "Sending %s, %d at a time, through %s\n\n", human.Plural(o.Requests, "chat completion"), o.Concurrency, t)
	start := time.Now()
	results := sendAll(ctx, client, srv.URL+"/v1/chat/completions", o.Requests, o.Concurrency)
	tl := collect(results, &progress{con: con, total: o.Requests, start: start})
	elapsed := time.Since(start)

	status := t.Keys()
	fmt.Fprintln(stdout)
	printSummary(stdout, tl, o.Requests, o.Concurrency, elapsed)
	fmt.Fprintln(stdout)
	printTable(stdout, status)
	fmt.Fprintln(stdout)
	if !verdict(stdout, tl, status, watch) {
		return ErrFailed
	}
	return nil
}

// newLiveTransport builds the credpool.Transport over the demo keys: keys go
// only to the simulated provider, the backoff between transient retries is
// short so the demo is quick, every state change is printed, and the watched
// key's death is recorded.
func newLiveTransport(serverURL string, concurrency int, con *console, watch *deathWatch) (*credpool.Transport, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.Proxy = nil // loopback only, whatever the environment says
	base.MaxIdleConnsPerHost = concurrency

	var t *credpool.Transport
	t, err = credpool.New(keyStrings(),
		credpool.WithBase(base),
		credpool.WithHosts(u.Host),
		credpool.WithBackoff(func() backoff.BackOff { return backoff.NewConstantBackOff(20 * time.Millisecond) }),
		credpool.WithOnStateChange(func(c credpool.StateChange) {
			con.event("state change: " + describe(c))
			if c.To == credpool.StateDead && c.Index == watch.index {
				watch.killed(c, t.Keys()[c.Index].Requests)
			}
		}),
	)
	return t, err
}

// describe tells a state change in one line, by label only.
func describe(c credpool.StateChange) string {
	var why []string
	if c.Reason != "" {
		why = append(why, string(c.Reason))
	}
	if c.Status != 0 {
		why = append(why, fmt.Sprintf("HTTP %d", c.Status))
	}
	if !c.ResetAt.IsZero() {
		why = append(why, "back in "+human.Wait(time.Until(c.ResetAt)))
	}
	switch {
	case c.From == credpool.StateExhausted && c.To == credpool.StateOK:
		why = append(why, "cooldown over")
	case c.From == c.To:
		why = append(why, "cooldown extended")
	}
	s := fmt.Sprintf("%-9s %-9s -> %s", c.Label, c.From, c.To)
	if len(why) > 0 {
		s += " (" + strings.Join(why, ", ") + ")"
	}
	return s
}
