package credpool

import (
	"math"
	"net/http"
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

// parseSeconds reads a count of seconds from now, as the body fields
// resets_in_seconds and retry_after give it.
func parseSeconds(v string) (time.Duration, bool) {
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0, false
	}
	return seconds(n)
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
