package credpool

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProactiveSteering(t *testing.T) {
	soon := time.Now().Add(90 * time.Second)
	cases := []struct {
		name     string
		headers  map[string]string
		cooled   bool
		resetIn  time.Duration
		remainig int64
	}{
		{"OpenAI requests spent", map[string]string{"X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Reset-Requests": "20s", "X-Ratelimit-Remaining-Tokens": "5000", "X-Ratelimit-Reset-Tokens": "1s"}, true, 20 * time.Second, 0},
		{"OpenAI tokens spent", map[string]string{"X-Ratelimit-Remaining-Requests": "12", "X-Ratelimit-Reset-Requests": "1s", "X-Ratelimit-Remaining-Tokens": "0", "X-Ratelimit-Reset-Tokens": "6m0s"}, true, 6 * time.Minute, 12},
		{"Anthropic RFC 3339", map[string]string{"Anthropic-Ratelimit-Requests-Remaining": "0", "Anthropic-Ratelimit-Requests-Reset": soon.UTC().Format(time.RFC3339)}, true, 90 * time.Second, 0},
		{"GitHub epoch seconds", map[string]string{"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": strconv.FormatInt(soon.Unix(), 10)}, true, 90 * time.Second, 0},
		{"some left", map[string]string{"X-Ratelimit-Remaining-Requests": "59", "X-Ratelimit-Reset-Requests": "1s"}, false, 0, 59},
		{"spent with no reset: no guess", map[string]string{"X-Ratelimit-Remaining-Requests": "0"}, false, 0, 0},
		{"no headers", nil, false, 0, -1},
		{"garbage", map[string]string{"X-Ratelimit-Remaining-Requests": "lots"}, false, 0, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, func(string, int) reply { return reply{status: 200, header: tc.headers, body: "ok"} })
			tr := newTransport(t, []string{keyA, keyB}, WithStrategy(FillFirst))
			start := time.Now()
			get(t, tr, p.URL)
			a := tr.Keys()[0]
			assert.Equal(t, tc.remainig, a.Remaining)
			if !tc.cooled {
				assert.Equal(t, StateOK, a.State)
				return
			}
			assert.Equal(t, StateExhausted, a.State)
			assert.Equal(t, ReasonRateLimit, a.Reason)
			assert.WithinDuration(t, start.Add(tc.resetIn), a.ResetAt, 2*time.Second)
			get(t, tr, p.URL)
			assert.Equal(t, []string{keyA, keyB}, p.keys(), "the next request goes to another key before a 429")
		})
	}
}

func TestSteeringHeaderSets(t *testing.T) {
	openai := http.Header{"X-Ratelimit-Remaining-Requests": {"5"}, "X-Ratelimit-Remaining-Tokens": {"0"}}
	anthropic := http.Header{"Anthropic-Ratelimit-Requests-Remaining": {"0"}}
	github := http.Header{"X-Ratelimit-Remaining": {"17"}}
	cases := []struct {
		name  string
		steer steering
		h     http.Header
		n     int64
		known bool
		spent bool
	}{
		{"any reads OpenAI", steerAny, openai, 5, true, true},
		{"any reads Anthropic", steerAny, anthropic, 0, true, true},
		{"any reads GitHub", steerAny, github, 17, true, false},
		{"OpenAI preset", steerOpenAI, openai, 5, true, true},
		{"OpenAI preset ignores Anthropic's", steerOpenAI, anthropic, 0, false, false},
		{"Anthropic preset", steerAnthropic, anthropic, 0, true, true},
		{"GitHub preset", steerGitHub, github, 17, true, false},
		{"Gemini reports nothing", steerNone, openai, 0, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, known := tc.steer.remaining(tc.h)
			assert.Equal(t, tc.n, n)
			require.Equal(t, tc.known, known)
			if known {
				assert.Equal(t, tc.spent, tc.steer.spent(tc.h, n))
			}
		})
	}
}
