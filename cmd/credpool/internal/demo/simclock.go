// simclock.go is the simulated day's clock: a time of day for each moment
// of the day, and the two clocks the pools run on.
//
// The naive pool is ours, so it reads a clock we step from one request to
// the next: its leg never waits for anything. credpool has no clock option:
// it reads time.Now for its cooldowns and sleeps real time in its backoffs.
// So its leg runs on the real clock, sped up: every duration credpool is
// given (its cooldowns, its backoffs, the provider's Retry-After) is the
// simulated one divided by speedup, each request is sent when the real clock
// reaches its simulated time, and what credpool reports is read back in
// simulated time.

package demo

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// The simulated day begins at dayStart, 06:00, so that the night, when the
// out-of-credit key gets its new day's credit, falls inside it, and it lasts
// a day. Times in the demo are durations since its beginning.
const (
	dayStart = 6 * time.Hour
	dayLen   = 24 * time.Hour
)

// dayTakes is how long the simulated day takes in real time on credpool's
// clock: sped up 43200 times, a simulated minute lasts 1.4 ms.
const dayTakes = 2 * time.Second

// speedup is how much faster than real time credpool's clock runs.
const speedup = int64(dayLen / dayTakes)

// at returns the moment of the simulated day at the time of day h:m; a time
// before dayStart is on the next day.
func at(h, m int) time.Duration {
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute - dayStart
	if d < 0 {
		d += dayLen
	}
	return d
}

// timeOfDay formats a moment of the simulated day as the clock shows it,
// "07:30".
func timeOfDay(t time.Duration) string {
	d := (dayStart + t) % dayLen
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// nextDay reports whether moment t is past midnight, on the next day.
func nextDay(t time.Duration) bool { return dayStart+t >= dayLen }

// A clock reads the simulated time and says how long a simulated duration
// lasts on the timer that runs it.
type clock interface {
	now() time.Duration
	scale(d time.Duration) time.Duration
}

// stepClock is the naive pool's clock: the driver sets it to each request's
// time before sending it, and durations are what they say.
type stepClock struct{ t atomic.Int64 }

func (c *stepClock) set(t time.Duration)                 { c.t.Store(int64(t)) }
func (c *stepClock) now() time.Duration                  { return time.Duration(c.t.Load()) }
func (c *stepClock) scale(d time.Duration) time.Duration { return d }

// fastClock is credpool's clock: the real clock, sped up by speedup, from
// the moment begin is called (the day has not begun before: now is 0).
//
// The provider judges the keys by it too, so that credpool and the provider
// always agree on what time it is, however busy the machine: when the
// driver falls behind, its requests go out late, on this clock, rather
// than the clock holding back and credpool's own timers running ahead of
// it.
type fastClock struct {
	start atomic.Int64 // Unix nanoseconds the day began at; 0 before begin
	late  atomic.Int64 // the most a request went out late, simulated
}

func (c *fastClock) begin() { c.start.Store(time.Now().UnixNano()) }

func (c *fastClock) now() time.Duration {
	start := c.start.Load()
	if start == 0 {
		return 0
	}
	return time.Duration(time.Now().UnixNano()-start) * time.Duration(speedup)
}

func (c *fastClock) scale(d time.Duration) time.Duration { return d / time.Duration(speedup) }

// waitFor waits until the clock reaches moment t of the simulated day, or
// ctx ends. A driver that fell behind does not wait: it catches up, and the
// clock records how late it was.
func (c *fastClock) waitFor(ctx context.Context, t time.Duration) error {
	if late := c.now() - t; late >= 0 {
		if late > time.Duration(c.late.Load()) {
			c.late.Store(int64(late))
		}
		return ctx.Err()
	}
	timer := time.NewTimer(time.Until(time.Unix(0, c.start.Load()).Add(c.scale(t))))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lateness returns the most a request went out late, on the simulated
// clock.
func (c *fastClock) lateness() time.Duration { return time.Duration(c.late.Load()) }
