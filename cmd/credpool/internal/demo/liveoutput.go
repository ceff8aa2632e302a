// liveoutput.go prints the live demo: event lines, a progress line (redrawn
// in place on a terminal, every quarter of the run otherwise), the summary,
// the per-key table and the verdict.

package demo

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/human"
)

// console serializes the demo's output. On a terminal it keeps a progress
// line at the bottom of stderr, clearing it before an event line is printed
// to stdout and drawing it again after.
type console struct {
	stdout, stderr io.Writer
	tty            bool // stderr is a terminal

	mu   sync.Mutex
	line string // the progress line on the terminal, if any
}

func newConsole(stdout, stderr io.Writer) *console {
	return &console{stdout: stdout, stderr: stderr, tty: isTerminal(stderr)}
}

// event prints one line to stdout.
func (c *console) event(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tty && c.line != "" {
		fmt.Fprint(c.stderr, "\r\033[K")
	}
	fmt.Fprintln(c.stdout, line)
	if c.tty && c.line != "" {
		fmt.Fprint(c.stderr, c.line)
	}
}

// status shows a progress line: redrawn in place on a terminal, else printed
// as a line of its own.
func (c *console) status(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tty {
		fmt.Fprintln(c.stderr, line)
		return
	}
	c.line = line
	fmt.Fprint(c.stderr, "\r\033[K"+line)
}

// endStatus leaves the last progress line on the terminal and moves below it.
func (c *console) endStatus() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tty && c.line != "" {
		fmt.Fprintln(c.stderr)
		c.line = ""
	}
}

// progress decides when to show progress: about ten times a second on a
// terminal, at every quarter of the run otherwise, so CI logs stay readable.
type progress struct {
	con     *console
	total   int
	start   time.Time
	quarter int // quarters already printed, off a terminal
}

func (p *progress) line(t tally) string {
	return fmt.Sprintf("progress: %d/%d done, %d ok, %d failed, %.2fs",
		t.done, p.total, t.ok, t.failed(), time.Since(p.start).Seconds())
}

// redraw shows the current progress on a terminal.
func (p *progress) redraw(t tally) { p.con.status(p.line(t)) }

// step is called after each outcome; off a terminal it prints a line when a
// new quarter of the requests is done.
func (p *progress) step(t tally) {
	if p.con.tty {
		return
	}
	if q := t.done * 4 / p.total; q > p.quarter {
		p.quarter = q
		p.con.status(p.line(t))
	}
}

// finish shows the final progress on a terminal and ends the line.
func (p *progress) finish(t tally) {
	if p.con.tty {
		p.redraw(t)
		p.con.endStatus()
	}
}

// printSummary prints the outcomes of the run.
func printSummary(out io.Writer, t tally, n, c int, elapsed time.Duration) {
	fmt.Fprintf(out, "Sent %s, %d at a time, in %s:\n", human.Plural(n, "request"), c, elapsed.Round(time.Millisecond))
	w := tabwriter.NewWriter(out, 0, 0, 1, ' ', 0)
	fmt.Fprintf(w, "  succeeded:\t%d\n", t.ok)
	if len(t.byStatus) == 0 {
		fmt.Fprintf(w, "  handed back with a non-200 status:\t0\n")
	}
	for _, status := range sortedKeys(t.byStatus) {
		fmt.Fprintf(w, "  handed back with status %d:\t%d\n", status, t.byStatus[status])
	}
	fmt.Fprintf(w, "  errors:\t%d\n", t.errCount())
	w.Flush()
	for i, msg := range sortedKeys(t.errs) {
		if i == 5 {
			fmt.Fprintf(out, "    ... and %d more kinds of error\n", len(t.errs)-i)
			break
		}
		fmt.Fprintf(out, "    %d x %s\n", t.errs[msg], msg)
	}
}

// printTable prints the per-key status table.
func printTable(out io.Writer, status []credpool.KeyStatus) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "LABEL\tSTATE\tREASON\tRESET IN\tREQUESTS\tFAILURES")
	for _, s := range status {
		reason, resetIn := human.Cells(s.Reason, s.ResetAt)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\n", s.Label, s.State, reason, resetIn, s.Requests, s.Failures)
	}
	w.Flush()
}

// verdict prints what the provider saw after the revoked key died, checks
// that it stayed dead and that every request succeeded, and reports whether
// both held.
func verdict(out io.Writer, t tally, status []credpool.KeyStatus, watch *deathWatch) bool {
	held := true
	r, killed := watch.report()
	if killed {
		printAfterKill(out, r, status)
	}
	label := status[watch.index].Label
	if problem := deadKeyProblem(r, killed, t, status[watch.index]); problem != "" {
		fmt.Fprintln(out, "FAIL:", problem)
		held = false
	} else {
		fmt.Fprintf(out, "OK: revoked key %s is dead, no request failed because of it, and it received 0 requests after it was killed.\n", label)
	}
	if f := t.failed(); f > 0 {
		fmt.Fprintf(out, "FAIL: %d of %s did not succeed (see the summary above).\n", f, human.Plural(t.done, "request"))
		held = false
	}
	return held
}

// deadKeyProblem returns what is wrong with the revoked key's fate, or "" if
// it died, stayed dead, got no request after its death and failed no request.
func deadKeyProblem(r deathReport, killed bool, t tally, key credpool.KeyStatus) string {
	switch {
	case !killed:
		return fmt.Sprintf("revoked key %s was never killed", key.Label)
	case key.State != credpool.StateDead:
		return fmt.Sprintf("revoked key %s is %s, not dead", key.Label, key.State)
	case t.byStatus[http.StatusUnauthorized] > 0:
		return fmt.Sprintf("%s ended with a 401, which only the revoked key gets", human.Plural(t.byStatus[http.StatusUnauthorized], "request"))
	case r.sentAfter > 0:
		return fmt.Sprintf("revoked key %s received %s after it was killed", key.Label, human.Plural(r.sentAfter, "request"))
	}
	return ""
}

// printAfterKill prints how many requests the provider saw per key after the
// revoked key was killed.
func printAfterKill(out io.Writer, r deathReport, status []credpool.KeyStatus) {
	parts := make([]string, len(status))
	for i, s := range status {
		parts[i] = fmt.Sprintf("%s %d", s.Label, r.afterKill[i])
	}
	fmt.Fprintf(out, "Requests the provider saw after %s was killed: %s\n", r.change.Label, strings.Join(parts, ", "))
	if r.inFlight > 0 {
		fmt.Fprintf(out, "(%s with %s had been sent before it was killed but reached the provider just after; %d after it.)\n",
			human.Plural(r.inFlight, "request"), r.change.Label, r.sentAfter)
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[K int | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
