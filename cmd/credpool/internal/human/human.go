// Package human formats waits and counts for people, for the tables and
// reports of the credpool command.
package human

import (
	"fmt"
	"math"
	"time"

	"github.com/credpool/credpool"
)

// Wait formats a wait for people: tenths of a second, rounded up, when
// short; whole seconds otherwise; "now" when there is none.
func Wait(d time.Duration) string {
	switch {
	case d <= 0:
		return "now"
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", math.Ceil(d.Seconds()*10)/10)
	}
	return d.Truncate(time.Second).String()
}

// Cells returns a key's reason and the wait until its reset for a table,
// with "-" for either when there is none.
func Cells(reason credpool.Reason, resetAt time.Time) (string, string) {
	r, in := string(reason), "-"
	if r == "" {
		r = "-"
	}
	if !resetAt.IsZero() {
		in = Wait(time.Until(resetAt))
	}
	return r, in
}

// Plural counts things in English: "1 request", "300 requests".
func Plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
