// democmd.go is the demo command: its flags, and the wiring to the demo
// package, where the demos live.

package main

import (
	"context"
	"errors"
	"flag"

	"github.com/credpool/credpool/cmd/credpool/internal/demo"
)

// demoOptions are the demo command's flags.
type demoOptions struct {
	live bool
	n, c int
	seed uint64
	html string
}

// demoFlags returns the demo command's FlagSet and the options it fills.
func demoFlags() (*flag.FlagSet, *demoOptions) {
	o := new(demoOptions)
	fs := newFlagSet("demo", "[--html FILE] [--seed N] | --live [-n requests] [-c concurrency]", `Show credpool against a simulated OpenAI-style provider, with five made-up
keys: one revoked, one that runs out of credit, one rate-limited now and
then, two healthy. It needs no network and no keys, and prints labels such
as sk-…REVK, never a key.

By default it plays one simulated day of traffic, in about two seconds,
through a naive pool (round robin, any failure cools a key for 5 minutes)
and through credpool, and prints side by side the requests sent to the
revoked key, the requests that failed, the time spent waiting and the
upstream attempts, each explained, with a timeline of every key. It exits 1
if credpool did not do better. docs/demo.md explains every number.

With --live it sends real concurrent requests through credpool instead, and
prints each key state change as it happens; it exits 1 if any request failed
or the revoked key did not stay dead.
`)
	fs.BoolVar(&o.live, "live", false, "run the live demo: concurrent requests in real time, state changes as they happen")
	fs.IntVar(&o.n, "n", 300, "with --live: number of requests to send")
	fs.IntVar(&o.c, "c", 16, "with --live: number of requests in flight at once")
	fs.Uint64Var(&o.seed, "seed", 1, "the simulated day's luck: which attempts the provider's overloads fail")
	fs.StringVar(&o.html, "html", "", "also write the day's report as a self-contained HTML `file`, with an SVG chart")
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
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	switch {
	case o.live && (set["html"] || set["seed"]):
		return usagef("--html and --seed are for the simulated day, not --live")
	case !o.live && (set["n"] || set["c"]):
		return usagef("-n and -c are for --live")
	case o.live:
		err = demo.Live(ctx, demo.LiveOptions{Requests: o.n, Concurrency: o.c}, out.stdout, out.stderr)
	default:
		err = demo.Compare(ctx, demo.CompareOptions{Seed: o.seed, Color: demo.UseColor(out.stdout), HTML: o.html}, out.stdout)
	}
	if errors.Is(err, demo.ErrFailed) {
		return exitStatus(exitFail) // the demo said what
	}
	return err
}
