package credpool

import (
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Reset hints come in every format there is: Go durations ("6m0s", OpenAI,
// Groq), RFC 3339 (Anthropic), HTTP-dates and seconds (Retry-After), epoch
// seconds (GitHub), epoch milliseconds (OpenRouter), proto durations in the
// body (Gemini) and sentences in the message. Every parser here returns a
// duration from now, or ok=false; none clamps: the caller clamps once.

// retryAfter reads the standard wait headers: retry-after-ms (milliseconds,
// Azure and the OpenAI SDKs), then Retry-After in seconds (fractions allowed)
// or as an HTTP-date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return seconds(ms / 1000)
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return seconds(s)
	}
	return untilTime(http.ParseTime(v))(now)
}

// parseReset reads one reset value of any format: a Go duration, an RFC 3339
// or HTTP date, or a number, which by its magnitude is epoch milliseconds
// (> 1e12), epoch seconds (> 1e9) or seconds from now.
func parseReset(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		switch {
		case math.IsNaN(n) || math.IsInf(n, 0):
			return 0, false
		case n > 1e17: // past any epoch anyone means: saturate before int64 overflows
			return math.MaxInt64, true
		case n > 1e12:
			return max(time.UnixMilli(int64(n)).Sub(now), 0), true
		case n > 1e9:
			return max(time.Unix(int64(n), 0).Sub(now), 0), true
		}
		return seconds(n)
	}
	if d, err := time.ParseDuration(v); err == nil {
		return max(d, 0), true
	}
	if d, ok := untilTime(time.Parse(time.RFC3339, v))(now); ok {
		return d, true
	}
	return untilTime(http.ParseTime(v))(now)
}

// untilTime turns a parsed time into a function giving the wait from now; a
// time in the past means no wait.
func untilTime(t time.Time, err error) func(time.Time) (time.Duration, bool) {
	return func(now time.Time) (time.Duration, bool) {
		if err != nil {
			return 0, false
		}
		return max(t.Sub(now), 0), true
	}
}

// limitResets names the reset headers of each rate-limit dimension, with the
// header that says how much of that dimension is left.
var limitResets = []struct{ remaining, reset string }{
	{"X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests"},
	{"X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens"},
	{"Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset"},
	{"Anthropic-Ratelimit-Tokens-Remaining", "Anthropic-Ratelimit-Tokens-Reset"},
	{"Anthropic-Ratelimit-Input-Tokens-Remaining", "Anthropic-Ratelimit-Input-Tokens-Reset"},
	{"Anthropic-Ratelimit-Output-Tokens-Remaining", "Anthropic-Ratelimit-Output-Tokens-Reset"},
	{"", "X-Rate-Limit-Reset-Tokens"}, // Azure
	{"X-Ratelimit-Remaining", "X-Ratelimit-Reset"},
}

// limitReset returns the reset of the dimension that ran out: the one whose
// remaining count is 0, else the latest reset given, since a request must
// wait for every limit it hit.
func limitReset(h http.Header, now time.Time) (time.Duration, bool) {
	var latest time.Duration
	found := false
	for _, l := range limitResets {
		d, ok := parseReset(headerValue(h, l.reset), now)
		if !ok {
			continue
		}
		if l.remaining != "" && headerValue(h, l.remaining) == "0" {
			return d, true
		}
		latest, found = max(latest, d), true
	}
	return latest, found
}

// headerValue reads a header by its canonical name, without the
// canonicalization http.Header.Get pays for.
func headerValue(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

var (
	// "try again in 26.604s", "try again in 9m38.016s", "Please retry in
	// 10.67s.", "Try again in 50 seconds", "retry after 86400 seconds".
	retryInMessage = regexp.MustCompile(`(?:try again|retry)(?: in| after) ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+|\d+(?:\.\d+)?)(?:\s*(seconds?|secs?|minutes?|mins?|hours?))?`)
	// Anthropic's spend cap: "You will regain access on 2026-04-01 at 00:00 UTC."
	regainInMessage = regexp.MustCompile(`regain access on (\d{4}-\d{2}-\d{2}) at (\d{2}:\d{2}) utc`)
	// Azure API Management, in .NET's TimeSpan format: "Quota will be
	// replenished in 00:00:09." or, past a day, "in 2.04:22:11."
	replenishInMessage = regexp.MustCompile(`replenished in (?:(\d+)\.)?(\d+):(\d{2}):(\d{2})`)
)

// messageWait reads a wait from the words of an error message.
func messageWait(msg string) (time.Duration, bool) {
	m := retryInMessage.FindStringSubmatch(msg)
	if m == nil {
		return 0, false
	}
	if d, err := time.ParseDuration(m[1]); err == nil {
		return max(d, 0), true
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	switch unit := m[2]; {
	case strings.HasPrefix(unit, "h"):
		n *= 3600
	case strings.HasPrefix(unit, "m"):
		n *= 60
	}
	return seconds(n)
}

// messageDate reads an end of quota from the words of an error message.
func messageDate(msg string, now time.Time) (time.Duration, bool) {
	if m := regainInMessage.FindStringSubmatch(msg); m != nil {
		return untilTime(time.Parse("2006-01-02 15:04", m[1]+" "+m[2]))(now)
	}
	if m := replenishInMessage.FindStringSubmatch(msg); m != nil {
		days, _ := strconv.Atoi(m[1]) // "" when under a day
		if days > 1e6 {
			return math.MaxInt64, true
		}
		d, ok := parseReset(m[2]+"h"+m[3]+"m"+m[4]+"s", now)
		return d + time.Duration(days)*24*time.Hour, ok
	}
	return 0, false
}

// seconds converts a provider's count of seconds to a Duration, refusing what
// no provider means (NaN, infinities) and saturating what would overflow.
func seconds(s float64) (time.Duration, bool) {
	switch {
	case math.IsNaN(s) || math.IsInf(s, 0):
		return 0, false
	case s <= 0:
		return 0, true
	case s >= float64(math.MaxInt64)/float64(time.Second):
		return math.MaxInt64, true
	}
	return time.Duration(s * float64(time.Second)), true
}

// clamp bounds d to [0, hi].
func clamp(d, hi time.Duration) time.Duration {
	return min(max(d, 0), hi)
}
