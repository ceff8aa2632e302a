package credpool

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryAfter reads the provider's standard wait hints: retry-after-ms
// (milliseconds, as Azure and the OpenAI SDKs use it), then Retry-After in
// seconds (fractions allowed) or as an HTTP-date. ok is false when neither is
// present or parses. A date in the past means no wait. The result is not yet
// clamped: the caller clamps it to its own bounds.
func retryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
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
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
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
