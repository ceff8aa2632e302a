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
		{in: "6m0s", want: 6 * time.Minute, ok: true},
		{in: "20ms", want: 20 * time.Millisecond, ok: true},
		{in: "2.5s", want: 2500 * time.Millisecond, ok: true},
		{in: "2m59.56s", want: 2*time.Minute + 59560*time.Millisecond, ok: true},
		{in: "0s", want: 0, ok: true},
		{in: "-5s", want: 0, ok: true},
		{in: "55", want: 55 * time.Second, ok: true},
		{in: "1.5", want: 1500 * time.Millisecond, ok: true},
		{in: "0", want: 0, ok: true},
		{in: "-3", want: 0, ok: true},
		{in: "1772366460", want: 60 * time.Second, ok: true},    // epoch seconds
		{in: "1772366460000", want: 60 * time.Second, ok: true}, // epoch milliseconds
		{in: "1772362800", want: 0, ok: true},                   // epoch in the past
		{in: "2026-03-01T12:00:30Z", want: 30 * time.Second, ok: true},
		{in: "2026-03-01T13:00:00+01:00", want: 0, ok: true}, // the same instant as now
		{in: "Sun, 01 Mar 2026 12:01:00 GMT", want: time.Minute, ok: true},
		{in: "9999-12-31T23:59:59Z", want: math.MaxInt64, ok: true}, // absurd: saturates, and the caller clamps
		{in: "1e30", want: math.MaxInt64, ok: true},
		{in: "NaN"},
		{in: "Inf"},
		{in: ""},
		{in: "soon"},
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
		{
			name:   "seconds",
			header: http.Header{"Retry-After": {"7"}},
			want:   7 * time.Second,
			ok:     true,
		},
		{
			name:   "fractional",
			header: http.Header{"Retry-After": {"0.25"}},
			want:   250 * time.Millisecond,
			ok:     true,
		},
		{
			name:   "milliseconds first",
			header: http.Header{"Retry-After-Ms": {"1500"}, "Retry-After": {"9"}},
			want:   1500 * time.Millisecond,
			ok:     true,
		},
		{
			name:   "HTTP-date",
			header: http.Header{"Retry-After": {"Sun, 01 Mar 2026 12:00:10 GMT"}},
			want:   10 * time.Second,
			ok:     true,
		},
		{
			name:   "past date",
			header: http.Header{"Retry-After": {"Sat, 28 Feb 2026 12:00:00 GMT"}},
			want:   0,
			ok:     true,
		},
		{
			name:   "negative",
			header: http.Header{"Retry-After": {"-4"}},
			want:   0,
			ok:     true,
		},
		{
			name:   "NaN",
			header: http.Header{"Retry-After": {"NaN"}},
		},
		{
			name:   "huge",
			header: http.Header{"Retry-After": {"1e30"}},
			want:   math.MaxInt64,
			ok:     true,
		},
		{
			name:   "garbage",
			header: http.Header{"Retry-After": {"later"}},
		},
		{
			name:   "none",
			header: http.Header{},
		},
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
