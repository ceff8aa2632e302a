// timeline.go turns a leg into a timeline: one row per key, one cell per
// half hour of the day, showing the state the key spent most of that half
// hour in, or that an attempt with it failed; and a row of the requests that
// failed.

package demo

import (
	"time"

	"github.com/credpool/credpool"
)

// columns is how many cells a timeline has across the day; each is a
// column's worth of it.
const (
	columns = 48
	column  = dayLen / columns
)

// mark is what a timeline cell shows, as a character.
type mark byte

const (
	markOK      mark = '=' // in rotation
	markCooling mark = '~' // cooling (exhausted), out of rotation until its reset
	markDead    mark = 'x' // dead, out of rotation for good
	markFailed  mark = '!' // an attempt with the key failed
)

// timeline is one leg's day, cell by cell.
type timeline struct {
	states    [][columns]mark // per key, per cell: the state held longest
	refusedIn [][columns]bool // per key, per cell: an attempt with the key failed
	failed    [columns]int    // requests that failed, per cell
	sent      []int           // attempts with each key
	refused   []int           // of those, the ones that failed
}

// newTimeline draws l's day for n keys.
func newTimeline(l *leg, n int) *timeline {
	tl := &timeline{states: make([][columns]mark, n), refusedIn: make([][columns]bool, n), sent: make([]int, n), refused: make([]int, n)}
	for _, a := range l.attempts {
		tl.sent[a.key]++
		if a.failed() {
			tl.refused[a.key]++
			tl.refusedIn[a.key][cell(a.at)] = true
		}
	}
	for k := range n {
		spans := statesOf(l.changes, k)
		for c := range columns {
			tl.states[k][c] = mostOf(spans, time.Duration(c)*column, time.Duration(c+1)*column)
		}
	}
	for _, t := range l.failed {
		tl.failed[cell(t)]++
	}
	return tl
}

// mark returns what key k's cell c shows on the terminal: a failed attempt,
// or else the state.
func (tl *timeline) mark(k, c int) mark {
	if tl.refusedIn[k][c] {
		return markFailed
	}
	return tl.states[k][c]
}

// cell returns the cell that moment t falls in.
func cell(t time.Duration) int { return min(max(int(t/column), 0), columns-1) }

// span is a key's state from a moment on, until the next span.
type span struct {
	from  time.Duration
	state credpool.State
}

// statesOf returns key k's states through the day, from its changes: ok
// until the first.
func statesOf(changes []change, k int) []span {
	spans := []span{{0, credpool.StateOK}}
	for _, c := range changes {
		if c.key == k {
			spans = append(spans, span{c.at, c.state})
		}
	}
	return spans
}

// mostOf returns the mark of the state held longest between from and to;
// of two held as long, the worse.
func mostOf(spans []span, from, to time.Duration) mark {
	held := map[credpool.State]time.Duration{}
	for i, s := range spans {
		end := dayLen
		if i+1 < len(spans) {
			end = spans[i+1].from
		}
		if d := min(end, to) - max(s.from, from); d > 0 {
			held[s.state] += d
		}
	}
	best, most := markOK, time.Duration(-1)
	for _, s := range []credpool.State{credpool.StateDead, credpool.StateExhausted, credpool.StateOK} {
		if held[s] > most {
			best, most = markFor(s), held[s]
		}
	}
	return best
}

func markFor(s credpool.State) mark {
	switch s {
	case credpool.StateDead:
		return markDead
	case credpool.StateExhausted:
		return markCooling
	}
	return markOK
}
