// compare.go is the comparison: one simulated day of traffic through a
// naive pool and through credpool, and what it shows.

package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// CompareOptions configure Compare.
type CompareOptions struct {
	// Seed decides which attempts the provider's overloads fail; the rest
	// of the day is fixed. The same seed gives the same numbers.
	Seed uint64
	// Color paints the timelines with ANSI colours; see UseColor.
	Color bool
	// HTML, when set, is a file to write a self-contained HTML report to:
	// the same numbers, and the timelines as an SVG chart.
	HTML string
}

// Compare plays one simulated day of traffic through a naive pool and
// through credpool, on an accelerated clock, in a few seconds: the same
// requests to a simulated OpenAI-style provider, where one key is revoked,
// one runs out of credit, one is rate-limited now and then and the provider
// is overloaded at times. It prints what each pool cost side by side, every
// number explained, a timeline of each key and a verdict to stdout, and
// returns ErrFailed if credpool did not do better.
func Compare(ctx context.Context, o CompareOptions, stdout io.Writer) error {
	c, err := play(ctx, o.Seed)
	if err != nil {
		return err
	}
	c.printText(stdout, painter(o.Color))
	if o.HTML != "" {
		var buf bytes.Buffer
		if err := c.writeHTML(&buf); err != nil {
			return err
		}
		if err := os.WriteFile(o.HTML, buf.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nThe HTML report is in %s.\n", o.HTML)
	}
	if !c.held() {
		return ErrFailed
	}
	return nil
}

// comparison is the day played through both pools.
type comparison struct {
	sc              *scenario
	labels          []string
	naive, credpool *leg
}

// play plays the day through both pools, one after the other, so that the
// naive pool's leg does not slow credpool's clock down.
func play(ctx context.Context, seed uint64) (*comparison, error) {
	sc := newScenario(seed)
	naive, err := runNaive(ctx, sc)
	if err != nil {
		return nil, err
	}
	cp, labels, err := runCredpool(ctx, sc)
	if err != nil {
		return nil, err
	}
	return &comparison{sc: sc, labels: labels, naive: naive, credpool: cp}, nil
}

// score is one leg's numbers. Each is read from what the provider answered
// and the callers got, not from the clock, so that a busy machine, which
// makes credpool's sped-up clock run late, cannot change it.
type score struct {
	revokedHits int           // attempts with the revoked key that it refused: those once it was revoked
	failed      int           // requests that failed
	waited      time.Duration // simulated time requests waited inside the pool
	attempts    int           // attempts the provider answered
}

func (c *comparison) score(l *leg) score {
	s := score{failed: len(l.failed), waited: l.waited, attempts: len(l.attempts)}
	for _, a := range l.attempts {
		if a.key == c.sc.revokedKey && a.status == http.StatusUnauthorized {
			s.revokedHits++
		}
	}
	return s
}
