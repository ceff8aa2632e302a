package credpool

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Resets in words: "Please try again in 9m38.016s", "Resets in 6hr 29min",
// "available in 42 minutes", "retry after 86400 seconds", "You will regain
// access on 2026-04-01 at 00:00 UTC", "resets at midnight UTC", "try again
// tomorrow", "Quota will be replenished in 2.04:22:11". Every wait a message
// states is read, and the longest wins: a key must wait for every limit it
// hit. Each is read from the message outside quoted spans, and dropped when
// the caller's own request carries the same words.

// waitTriggers introduce a wait from now.
var waitTriggers = []string{
	"again in ", "again after ", "retry in ", "retry after ", "retrying in ", "resets in ",
	"reset in ", "resets after ", "reset after ", "available in ", "regain access in ",
	"please wait ", "replenished in ",
}

// durationUnits are the words providers write after a number, by how long
// each is.
var durationUnits = map[string]time.Duration{
	"ms": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
}

var (
	// Azure API Management writes .NET's TimeSpan: "00:00:09", past a day "2.04:22:11".
	timeSpan = regexp.MustCompile(`^(?:(\d+)\.)?(\d+):(\d{2}):(\d{2})`)
	// A date and time after words that say the limit ends then: Anthropic's "regain
	// access on 2026-04-01 at 00:00 utc", "resets at 2026-03-02t00:00:00z".
	dateInProse = regexp.MustCompile(`(?:regain access|resets?|available(?: again)?|until|try again|retry)(?: on| at| after)? (\d{4}-\d{2}-\d{2})(?:t| at | )(\d{2}:\d{2})(?::(\d{2}))?(?:\.\d+)?(z| ?utc| ?gmt)?`)
)

// proseWait returns the longest wait that p states, from now. echoed reports
// whether the caller's request carries the words that state it; nil means it
// carries none.
func proseWait(p *prose, now time.Time, echoed func(string) bool) (time.Duration, bool) {
	return proseWaitOver(p, now, echoed, 0, false)
}

// proseWaitOver is the longest of d (if ok) and the waits that p states. Only
// a wait longer than the longest so far can change the answer, so only such
// a wait asks echoed, which reads the caller's request at its first question.
func proseWaitOver(p *prose, now time.Time, echoed func(string) bool, d time.Duration, ok bool) (time.Duration, bool) {
	longest, found := d, ok
	take := func(d time.Duration, said string) {
		if found && d <= longest || echoed != nil && echoed(words(said)) {
			return
		}
		longest, found = max(longest, d), true
	}
	text := p.text
	if hasDigit(text) { // every trigger and every date needs a number
		triggerWaits(text, take)
		dateWaits(text, now, take)
	}
	for _, w := range [...]string{" midnight utc ", " tomorrow ", " next month "} {
		if strings.Contains(p.words, w) {
			take(calendarWait(w, now), w)
		}
	}
	return longest, found
}

// triggerWaits passes take each wait that a trigger introduces ("try again in
// 20s") and the words that state it.
func triggerWaits(text string, take func(time.Duration, string)) {
	for _, trig := range waitTriggers {
		for i := 0; ; {
			j := strings.Index(text[i:], trig)
			if j < 0 {
				break
			}
			start := i + j
			i = start + len(trig)
			if d, n, ok := spokenDuration(text[i:]); ok {
				take(d, text[start:i+n])
			}
		}
	}
}

// dateWaits passes take the wait until each date that text says a limit ends
// on, and the words that say it. The expression runs only on a text with
// something shaped like a date in it, which few messages have.
func dateWaits(text string, now time.Time, take func(time.Duration, string)) {
	if !hasDate(text) {
		return
	}
	for _, m := range dateInProse.FindAllStringSubmatchIndex(text, 4) {
		sec := "00"
		if m[6] >= 0 {
			sec = text[m[6]:m[7]]
		}
		if t, err := time.Parse("2006-01-02 15:04:05", text[m[2]:m[3]]+" "+text[m[4]:m[5]]+":"+sec); err == nil {
			take(max(t.Sub(now), 0), text[m[0]:m[1]])
		}
	}
}

// hasDigit reports whether s has an ASCII digit.
func hasDigit(s string) bool {
	return strings.ContainsAny(s, "0123456789")
}

// hasDate reports whether s has a date as dateInProse reads one, dddd-dd-dd:
// without one, the expression cannot match.
func hasDate(s string) bool {
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '-')
		if j < 0 {
			return false
		}
		i += j
		if i >= 4 && i+6 <= len(s) && digits(s[i-4:i]) && digits(s[i+1:i+3]) && s[i+3] == '-' && digits(s[i+4:i+6]) {
			return true
		}
		i++
	}
}

// digits reports whether s is all ASCII digits.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// calendarWait is the wait until a calendar boundary a message names, in UTC,
// the only zone providers name for their days.
func calendarWait(boundary string, now time.Time) time.Duration {
	now = now.UTC()
	y, m, d := now.Date()
	end := time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
	if boundary == " next month " {
		end = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	}
	return end.Sub(now)
}

// spokenDuration reads a duration at the start of s: "9m38.016s", "6hr
// 29min", "42 minutes", "1 hour and 5 minutes", a TimeSpan "2.04:22:11", or a
// bare number of seconds. It returns the duration and the bytes read.
func spokenDuration(s string) (time.Duration, int, bool) {
	if m := timeSpanAt(s); m != nil {
		days, _ := strconv.ParseFloat("0"+m[1], 64)
		h, _ := strconv.Atoi(m[2])
		mins, _ := strconv.Atoi(m[3])
		secs, _ := strconv.Atoi(m[4])
		d, ok := seconds(days*86400 + float64(h*3600+mins*60+secs))
		return d, len(m[0]), ok
	}
	var total float64 // seconds
	read, parts := 0, 0
	for i := 0; ; {
		i = skipJoiners(s, i)
		numEnd := i
		for numEnd < len(s) && (s[numEnd] >= '0' && s[numEnd] <= '9' || s[numEnd] == '.' && numEnd > i) {
			numEnd++
		}
		if numEnd == i {
			break
		}
		n, err := strconv.ParseFloat(strings.TrimSuffix(s[i:numEnd], "."), 64)
		if err != nil {
			break
		}
		unitStart := numEnd
		for unitStart < len(s) && s[unitStart] == ' ' {
			unitStart++
		}
		unitEnd := unitStart
		for unitEnd < len(s) && s[unitEnd] >= 'a' && s[unitEnd] <= 'z' {
			unitEnd++
		}
		unit, ok := durationUnits[s[unitStart:unitEnd]]
		if !ok {
			if parts == 0 && unitEnd == unitStart { // "retry after 20": seconds
				total, read, parts = n, numEnd, 1
			}
			break
		}
		total += n * unit.Seconds()
		read, parts, i = unitEnd, parts+1, unitEnd
	}
	if parts == 0 || math.IsInf(total, 0) {
		return 0, 0, false
	}
	d, ok := seconds(total)
	return d, read, ok
}

// timeSpanAt matches timeSpan at the start of s. A TimeSpan starts with
// digits, a dot at most among them, up to a colon; most durations do not,
// and for them the expression does not run.
func timeSpanAt(s string) []string {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	if i == 0 || i == len(s) || s[i] != ':' {
		return nil
	}
	return timeSpan.FindStringSubmatch(s)
}

// skipJoiners skips the spaces, commas and "and" between the parts of a
// spoken duration.
func skipJoiners(s string, i int) int {
	for i < len(s) {
		switch {
		case s[i] == ' ' || s[i] == ',':
			i++
		case strings.HasPrefix(s[i:], "and "):
			i += 4
		case strings.HasPrefix(s[i:], "about "):
			i += 6
		default:
			return i
		}
	}
	return i
}
