// demo.go is the demo command: credpool keeping a pool of API keys healthy
// under load, with no network and no real keys.
//
// It starts the simulated OpenAI-style provider of demoprovider.go on
// loopback and sends a few hundred concurrent chat completions through an
// http.Client whose Transport is a credpool.Transport over its five made-up
// keys, and shows that:
//
//   - every request succeeds: the revoked key dies on its first 401 and
//     leaves rotation for good, the quota and rate-limited keys cool, and
//     overloaded answers are retried on another key after a short backoff;
//   - each key state change is reported as it happens, by redacted label;
//   - Transport.Status gives a per-key table of states and counters;
//   - the provider itself saw no request with the dead key after it was
//     killed.
//
// No key is ever printed, only labels such as "sk-…REVK". It exits 1 if any
// request ended in an error or a non-200 response, or if the revoked key did
// not die and stay dead.

package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/credpool/credpool"
)

// demoOptions are the demo command's flags.
type demoOptions struct {
	n, c int
}

// demoFlags returns the demo command's FlagSet and the options it fills.
func demoFlags() (*flag.FlagSet, *demoOptions) {
	o := new(demoOptions)
	fs := newFlagSet("demo", "[-n requests] [-c concurrency]", `Run credpool against a simulated OpenAI-style provider on loopback, with five
made-up keys: one revoked, one out of quota, one rate-limited now and then,
and two healthy ones that are sometimes overloaded. It needs no network and
no keys. It prints each key state change, a summary and the per-key table,
and exits 1 if any request failed or the revoked key did not stay dead.
`)
	fs.IntVar(&o.n, "n", 300, "number of requests to send")
	fs.IntVar(&o.c, "c", 16, "number of requests in flight at once")
	return fs, o
}

// runDemo is the demo command.
func runDemo(ctx context.Context, out output, args []string) error {
	fs, o := demoFlags()
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.n < 1 || o.c < 1 {
		return usagef("-n and -c must be at least 1")
	}

	prov := newProvider(demoKeys)
	srv := httptest.NewServer(prov.handler())
	defer srv.Close()

	con := newConsole(out)
	watch := &deathWatch{prov: prov, index: indexOf(revoked)}
	t, err := newDemoTransport(srv.URL, o.c, con, watch)
	if err != nil {
		return err
	}
	defer t.CloseIdleConnections()
	client := &http.Client{Transport: t, Timeout: 5 * time.Second}

	w := out.stdout
	fmt.Fprintf(w, "Sending %s, %d at a time, through %s\n\n", plural(o.n, "chat completion"), o.c, t)
	start := time.Now()
	results := sendAll(ctx, client, srv.URL+"/v1/chat/completions", o.n, o.c)
	tl := collect(results, &progress{con: con, total: o.n, start: start})
	elapsed := time.Since(start)

	status := t.Keys()
	fmt.Fprintln(w)
	printSummary(w, tl, o.n, o.c, elapsed)
	fmt.Fprintln(w)
	printTable(w, status)
	fmt.Fprintln(w)
	if verdict(w, tl, status, watch) != 0 {
		return exitStatus(exitFail)
	}
	return nil
}

// newDemoTransport builds the credpool.Transport over the demo keys: keys go
// only to the simulated provider, the backoff between transient retries is
// short so the demo is quick, every state change is printed, and the watched
// key's death is recorded.
func newDemoTransport(serverURL string, concurrency int, con *console, watch *deathWatch) (*credpool.Transport, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.Proxy = nil // loopback only, whatever the environment says
	base.MaxIdleConnsPerHost = concurrency

	keys := make([]string, len(demoKeys))
	for i, k := range demoKeys {
		keys[i] = k.key
	}
	var t *credpool.Transport
	t, err = credpool.New(keys,
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
		why = append(why, "back in "+roughly(time.Until(c.ResetAt)))
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
