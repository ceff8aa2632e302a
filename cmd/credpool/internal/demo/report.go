// report.go says what the comparison found, in words and numbers, for the
// terminal and the HTML report alike: the day, the numbers side by side
// with what each means, and the verdict.

package demo

import (
	"fmt"
	"strings"
	"time"
)

// intro says what was played, in one line.
func (c *comparison) intro() string {
	return fmt.Sprintf("One simulated day, %s to %s, the same %d chat completions (one a minute) through a naive pool and through credpool, to a simulated OpenAI-style provider.",
		timeOfDay(0), timeOfDay(dayLen), c.sc.requests)
}

// day describes what happens during the day, a line each.
func (c *comparison) day() []string {
	sc := c.sc
	var limits []string
	for _, w := range sc.limits {
		limits = append(limits, timeOfDay(w.from)+"-"+timeOfDay(w.to))
	}
	var overloads []string
	for _, o := range sc.overloads {
		overloads = append(overloads, fmt.Sprintf("%s-%s (%d, %.0f%% of attempts)", timeOfDay(o.from), timeOfDay(o.to), o.status, o.odds*100))
	}
	lines := []string{
		fmt.Sprintf("%s is revoked at %s: 401 invalid_api_key from then on.", c.labels[sc.revokedKey], timeOfDay(sc.revokedAt)),
		fmt.Sprintf("%s runs out of credit at %s: 429 insufficient_quota until its credit renews at %s.", c.labels[sc.quotaKey], timeOfDay(sc.quotaOut), timeOfDay(sc.quotaBack)),
		fmt.Sprintf("%s is rate-limited %s: 429 with a Retry-After until the window ends.", c.labels[sc.limitedKey], strings.Join(limits, ", ")),
	}
	var fine []string
	for i, k := range demoKeys {
		if k.kind == healthy {
			fine = append(fine, c.labels[i])
		}
	}
	lines = append(lines,
		strings.Join(fine, " and ")+" stay healthy.",
		"The provider is overloaded, whatever the key, "+strings.Join(overloads, ", ")+fmt.Sprintf("; which attempts fail is the luck of seed %d.", sc.seed),
		c.clocks(),
	)
	return lines
}

// clocks says what clock each pool ran on.
func (c *comparison) clocks() string {
	s := fmt.Sprintf("The naive pool runs on a clock stepped from one request to the next; credpool, which has no clock option, on the real clock sped up %d times: its day took %.1fs.",
		speedup, c.credpool.took.Seconds())
	if late := c.credpool.late; late >= busy {
		s += fmt.Sprintf(" The machine was busy: some requests went out up to %s late on that clock, bunched up after it, though credpool and the provider still agreed on the time.", late.Round(time.Minute))
	}
	return s
}

// busy is how late a request may go out on credpool's sped-up clock before
// the report says so: a timer that fires two milliseconds late already
// makes it a minute and a half.
const busy = 5 * time.Minute

// figure is one of the numbers the comparison reports, for both pools, and
// what it means.
type figure struct {
	name            string
	naive, credpool string
	means           string
}

// figures returns the numbers, side by side, each with what it means.
func (c *comparison) figures() []figure {
	sc := c.sc
	naive, cp := c.score(c.naive), c.score(c.credpool)
	inOverload := 0 // the naive pool's failures in an overload, or in the cooldown after it
	for _, t := range c.naive.failed {
		for _, o := range sc.overloads {
			if t >= o.from && t < o.to+naiveCooldown {
				inOverload++
				break
			}
		}
	}
	return []figure{
		{"Requests sent to the revoked key", fmt.Sprint(naive.revokedHits), fmt.Sprint(cp.revokedHits),
			fmt.Sprintf("attempts with %s from %s, when it was revoked, to the end of the day. The naive pool tries it again after every %s cooldown; credpool kills it on its first 401 and never sends it another.",
				c.labels[sc.revokedKey], timeOfDay(sc.revokedAt), minutes(naiveCooldown))},
		{"Requests that failed", fmt.Sprint(naive.failed), fmt.Sprint(cp.failed),
			fmt.Sprintf("of the %d requests, those whose caller got an error instead of a completion. %s came during an overload or in the %d minutes after it, when each 529 or 503 had taken a healthy key out of rotation and the pool ran dry. credpool backs off and retries instead, without blaming the key, and fails a request only when %d tries in a row were overloaded.",
				sc.requests, most(inOverload, naive.failed, "of the naive pool's"), int(naiveCooldown/time.Minute), naiveAttempts)},
		{"Time requests spent waiting", simSpan(naive.waited), simSpan(cp.waited),
			"the pauses inside the pool, over all requests, on the simulated clock. credpool pauses 0.25s, 0.375s, then 0.56s before its retries after an overload; the naive pool never pauses: it moves to the next key at once, or fails at once."},
		{"Upstream attempts", fmt.Sprint(naive.attempts), fmt.Sprint(cp.attempts),
			fmt.Sprintf("every attempt sent to the provider, with any key, first tries and retries alike; %d requests need %d at least. Each one a pool spends on a bad key costs the caller a round trip.", sc.requests, sc.requests)},
	}
}

// most says how many of n things some are: "All 52 of the naive pool's",
// "47 of the naive pool's 52".
func most(some, n int, of string) string {
	if some == n {
		return fmt.Sprintf("All %d %s", n, of)
	}
	return fmt.Sprintf("%d %s %d", some, of, n)
}

// minutes formats a whole number of minutes as an adjective: "5-minute".
func minutes(d time.Duration) string { return fmt.Sprintf("%d-minute", int(d/time.Minute)) }

// simSpan formats a simulated duration: tenths of a second under a minute,
// whole seconds above.
func simSpan(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
