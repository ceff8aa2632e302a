// Package demo shows credpool at work against simulated providers, with no
// network and no real keys.
//
// Compare plays one simulated day of traffic, on an accelerated clock,
// through a naive pool of the kind teams write by hand and through credpool,
// and shows side by side what each cost: requests sent to a revoked key,
// requests that failed, time spent waiting and upstream attempts, with a
// timeline of every key. Live sends a burst of concurrent requests through
// credpool in real time and prints each key's state change as it happens.
//
// Only the keys' redacted labels ("sk-…REVK") are ever printed, never a key.
package demo

import "errors"

// ErrFailed is returned when a demo ran but did not show what it is meant
// to: a request failed in Live, or one of Compare's claims did not hold. The
// demo has already said what went wrong, on its output.
var ErrFailed = errors.New("demo: a check did not hold")
