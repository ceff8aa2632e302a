// credpoolleg.go plays the day through the real credpool.Transport.
//
// credpool has no clock option, so this leg runs on the real clock, sped up
// (see simclock.go): every duration credpool is given is divided by speedup
// (its cooldowns, its longest cooldown and wait, its backoffs, the
// provider's Retry-After), each request is sent when the real clock reaches
// its simulated time, and what credpool does is read back on the simulated
// clock. Its base RoundTripper serves the simulated provider in process (see
// inProcess): over loopback, the traffic could not keep up with the clock
// on a busy machine.

package demo

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/credpool/credpool"
)

// runCredpool plays the day through credpool, with its defaults sped up.
// It returns the leg and the keys' labels.
func runCredpool(ctx context.Context, sc *scenario) (*leg, []string, error) {
	clk := new(fastClock)
	prov := newDayProvider(sc, clk)

	var waited atomic.Int64 // simulated backoff, over all requests
	var changes changeLog
	t, err := credpool.New(keyStrings(),
		credpool.WithBase(inProcess{prov.handler()}),
		credpool.WithHosts(providerHost),
		// credpool's defaults, on the sped-up clock.
		credpool.WithCooldown(credpool.ReasonAuth, clk.scale(5*time.Minute)),
		credpool.WithCooldown(credpool.ReasonBilling, clk.scale(time.Hour)),
		credpool.WithCooldown(credpool.ReasonRateLimit, clk.scale(time.Minute)),
		credpool.WithMaxCooldown(clk.scale(24*time.Hour)),
		credpool.WithMaxWait(clk.scale(30*time.Second)),
		credpool.WithBackoff(func() backoff.BackOff { return &simBackoff{clock: clk, waited: &waited} }),
		credpool.WithOnStateChange(func(c credpool.StateChange) {
			changes.add(c.Index, c.To, clk.now())
		}),
	)
	if err != nil {
		return nil, nil, err
	}

	client := &http.Client{Transport: t}
	start := time.Now()
	clk.begin()
	failed, err := drive(ctx, client, providerURL+chatPath, sc, func(ctx context.Context, t time.Duration) (time.Duration, error) {
		err := clk.waitFor(ctx, t)
		return clk.now(), err
	})
	if err != nil {
		return nil, nil, err
	}
	var labels []string
	for _, k := range t.Keys() {
		labels = append(labels, k.Label)
	}
	l := &leg{name: "credpool", changes: changes.sorted(), attempts: prov.log(), failed: failed, waited: time.Duration(waited.Load()),
		took: time.Since(start), late: clk.lateness()}
	return l, labels, nil
}

// simBackoff is credpool's default backoff between transient retries
// (exponential from 250 ms, by half again each time, up to 8 s) on the
// sped-up clock. It leaves out the default's random jitter, so that a seed
// always gives the same numbers, and adds each pause, in simulated time, to
// waited: timing credpool's real pauses would measure the scheduler, at
// this speed.
type simBackoff struct {
	clock  *fastClock
	waited *atomic.Int64
	next   time.Duration
}

// NextBackOff implements backoff.BackOff.
func (b *simBackoff) NextBackOff() time.Duration {
	d := max(b.next, 250*time.Millisecond)
	b.next = min(d*3/2, 8*time.Second)
	b.waited.Add(int64(d))
	return b.clock.scale(d)
}

// Reset implements backoff.BackOff.
func (b *simBackoff) Reset() { b.next = 0 }
