package credpool

import "strconv"

// Strategy decides which usable key the next attempt takes.
type Strategy int

// The strategies. Each one only ever chooses among usable keys: a dead key, or
// one still cooling, is never chosen.
const (
	// RoundRobin takes the keys in turn, spreading load and rate limits evenly.
	RoundRobin Strategy = iota
	// FillFirst takes the first usable key in the order given to New, moving to
	// the next only when it fails: a primary key with spares.
	FillFirst
	// LeastUsed takes the key with the fewest attempts so far. A key back
	// from a cooldown rejoins level with the least used key, first in line,
	// rather than taking every request until it catches up.
	LeastUsed
	// Random takes a usable key at random.
	Random
)

// String returns the strategy's name, e.g. "round_robin".
func (s Strategy) String() string {
	switch s {
	case RoundRobin:
		return "round_robin"
	case FillFirst:
		return "fill_first"
	case LeastUsed:
		return "least_used"
	case Random:
		return "random"
	}
	return "Strategy(" + strconv.Itoa(int(s)) + ")"
}
