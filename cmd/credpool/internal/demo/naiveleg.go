// naiveleg.go plays the day through the naive pool, on a clock stepped from
// one request to the next.

package demo

import (
	"context"
	"net/http"
	"time"
)

// runNaive plays the day through the naive pool. Nothing waits: the clock
// jumps to each request's time, and the pool never pauses.
func runNaive(ctx context.Context, sc *scenario) (*leg, error) {
	clk := new(stepClock)
	prov := newDayProvider(sc, clk)
	var changes changeLog
	client := &http.Client{Transport: newNaivePool(keyStrings(), inProcess{prov.handler()}, clk, changes.add)}
	failed, err := drive(ctx, client, providerURL+chatPath, sc, func(ctx context.Context, t time.Duration) (time.Duration, error) {
		clk.set(t)
		return t, ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	return &leg{name: "The naive pool", changes: changes.sorted(), attempts: prov.log(), failed: failed}, nil
}
