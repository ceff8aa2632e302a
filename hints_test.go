package credpool

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseReset(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"6m0s", 6 * time.Minute, true},
		{"20ms", 20 * time.Millisecond, true},
		{"2.5s", 2500 * time.Millisecond, true},
		{"2m59.56s", 2*time.Minute + 59560*time.Millisecond, true},
		{"0s", 0, true},
		{"-5s", 0, true},
		{"55", 55 * time.Second, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"0", 0, true},
		{"-3", 0, true},
		{"1772366460", 60 * time.Second, true},    // epoch seconds
		{"1772366460000", 60 * time.Second, true}, // epoch milliseconds
		{"1772362800", 0, true},                   // epoch in the past
		{"2026-03-01T12:00:30Z", 30 * time.Second, true},
		{"2026-03-01T13:00:00+01:00", 0, true}, // the same instant as now
		{"Sun, 01 Mar 2026 12:01:00 GMT", time.Minute, true},
		{"9999-12-31T23:59:59Z", math.MaxInt64, true}, // absurd: saturates, and the caller clamps
		{"1e30", math.MaxInt64, true},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseReset(tc.in, testNow)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRetryAfter(t *testing.T) {
	cases := []struct {
		name   string
		header http.Header
		want   time.Duration
		ok     bool
	}{
		{"seconds", http.Header{"Retry-After": {"7"}}, 7 * time.Second, true},
		{"fractional", http.Header{"Retry-After": {"0.25"}}, 250 * time.Millisecond, true},
		{"milliseconds first", http.Header{"Retry-After-Ms": {"1500"}, "Retry-After": {"9"}}, 1500 * time.Millisecond, true},
		{"HTTP-date", http.Header{"Retry-After": {"Sun, 01 Mar 2026 12:00:10 GMT"}}, 10 * time.Second, true},
		{"past date", http.Header{"Retry-After": {"Sat, 28 Feb 2026 12:00:00 GMT"}}, 0, true},
		{"negative", http.Header{"Retry-After": {"-4"}}, 0, true},
		{"NaN", http.Header{"Retry-After": {"NaN"}}, 0, false},
		{"huge", http.Header{"Retry-After": {"1e30"}}, math.MaxInt64, true},
		{"garbage", http.Header{"Retry-After": {"later"}}, 0, false},
		{"none", http.Header{}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := retryAfter(tc.header, testNow)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLimitResetPicksTheSpentDimension(t *testing.T) {
	h := http.Header{
		"X-Ratelimit-Remaining-Requests": {"59"}, "X-Ratelimit-Reset-Requests": {"1s"},
		"X-Ratelimit-Remaining-Tokens": {"0"}, "X-Ratelimit-Reset-Tokens": {"6m0s"},
	}
	d, ok := limitReset(h, testNow)
	assert.True(t, ok)
	assert.Equal(t, 6*time.Minute, d)

	h["X-Ratelimit-Remaining-Tokens"] = []string{"10"}
	h["X-Ratelimit-Reset-Requests"] = []string{"7m"}
	d, _ = limitReset(h, testNow)
	assert.Equal(t, 7*time.Minute, d, "no dimension at 0: the latest reset")
}

func TestClamp(t *testing.T) {
	assert.Equal(t, time.Duration(0), clamp(-time.Second, time.Hour))
	assert.Equal(t, time.Hour, clamp(math.MaxInt64, time.Hour))
	assert.Equal(t, time.Minute, clamp(time.Minute, time.Hour))
}
