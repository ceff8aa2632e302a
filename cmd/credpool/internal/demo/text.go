// text.go prints the comparison for the terminal: the day, the numbers side
// by side, each key's timeline and the verdict, in colour when asked.

package demo

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/credpool/credpool/cmd/credpool/internal/human"
)

// textWidth is where prose is wrapped: the timelines are 86 characters
// wide.
const textWidth = 88

// printText prints the comparison to w.
func (c *comparison) printText(w io.Writer, p painter) {
	fmt.Fprintln(w, p.paint(ansiBold, wrap(c.intro(), textWidth, "")))
	fmt.Fprintln(w)
	for _, line := range c.day() {
		fmt.Fprintln(w, wrap(line, textWidth, "  "))
	}
	fmt.Fprintln(w)
	c.printFigures(w, p)
	for _, l := range []*leg{c.naive, c.credpool} {
		fmt.Fprintln(w)
		c.printTimeline(w, p, l)
	}
	fmt.Fprintln(w)
	for _, line := range timelineLegend {
		fmt.Fprintln(w, "  "+line)
	}
	fmt.Fprintln(w)
	for _, cl := range c.claims() {
		verdict, code := "OK:", ansiGreen
		if !cl.held {
			verdict, code = "FAIL:", ansiRed
		}
		// Wrapped before it is painted: colour codes take no room.
		line := wrap(verdict+" "+cl.text, textWidth, "    ")
		fmt.Fprintln(w, p.paint(code, verdict)+line[len(verdict):])
	}
}

// printFigures prints the numbers side by side, then what each means.
func (c *comparison) printFigures(w io.Writer, p painter) {
	figs := c.figures()
	fmt.Fprintf(w, "  %-34s %12s %10s\n", "", "naive pool", "credpool")
	for _, f := range figs {
		fmt.Fprintf(w, "  %-34s %12s %s\n", f.name, f.naive, p.paint(ansiBold, fmt.Sprintf("%10s", f.credpool)))
	}
	fmt.Fprintln(w)
	for _, f := range figs {
		fmt.Fprintln(w, wrap(f.name+": "+f.means, textWidth, "  "))
	}
}

// printTimeline prints each key's row and the row of failed requests.
func (c *comparison) printTimeline(w io.Writer, p painter, l *leg) {
	tl := newTimeline(l, len(c.labels))
	fmt.Fprintf(w, "%s, key by key, one character per half hour:\n", p.paint(ansiBold, l.name))
	fmt.Fprintf(w, "  %s  %s\n", pad("", 10), axis())
	for k, label := range c.labels {
		var row strings.Builder
		for c := range columns {
			row.WriteString(paintMark(p, tl.mark(k, c)))
		}
		fmt.Fprintf(w, "  %s  %s  sent %d, failed %d\n", pad(label, 10), row.String(), tl.sent[k], tl.refused[k])
	}
	var row strings.Builder
	for _, n := range tl.failed {
		row.WriteString(failedCell(p, n))
	}
	fmt.Fprintf(w, "  %s  %s  %s\n", pad("failed", 10), row.String(), human.Plural(len(l.failed), "request"))
}

// timelineLegend says what the timelines show.
var timelineLegend = []string{
	"= in rotation   ~ cooling: out of rotation until it may return",
	"x dead: out of rotation for good, until someone resets it",
	"! an attempt with the key failed in that half hour (shown over the state)",
	"failed: the requests that failed in that half hour, + for 10 or more",
	"sent, failed: the attempts with the key over the day, and how many the provider refused",
}

// axis returns the hours across a timeline, every 3 hours (6 cells).
func axis() string {
	var b strings.Builder
	for c := 0; c <= columns; c += 6 {
		fmt.Fprintf(&b, "%-6s", timeOfDay(time.Duration(c) * column)[:2])
	}
	return strings.TrimRight(b.String(), " ")
}

// paintMark returns a cell's character, in its colour.
func paintMark(p painter, m mark) string {
	code := map[mark]string{markOK: ansiGreen, markCooling: ansiYellow, markDead: ansiGrey, markFailed: ansiRed}[m]
	return p.paint(code, string(m))
}

// failedCell returns the failed row's cell for n failed requests: "." for
// none, the count up to 9, "+" above.
func failedCell(p painter, n int) string {
	switch {
	case n == 0:
		return p.paint(ansiGrey, ".")
	case n > 9:
		return p.paint(ansiRed, "+")
	}
	return p.paint(ansiRed, fmt.Sprint(n))
}

// pad pads s with spaces to n characters.
func pad(s string, n int) string {
	return s + strings.Repeat(" ", max(n-utf8.RuneCountInString(s), 0))
}

// wrap breaks s into lines of at most width characters, at spaces; lines
// after the first start with indent.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	line := 0
	for i, word := range strings.Fields(s) {
		n := utf8.RuneCountInString(word)
		if i > 0 && line+1+n > width {
			b.WriteString("\n" + indent)
			line = utf8.RuneCountInString(indent)
		} else if i > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += n
	}
	return b.String()
}
