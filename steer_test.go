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
		name      string
		headers   map[string]string
		cooled    bool
		resetIn   time.Duration
		remaining int64
	}{
		{
			name: "OpenAI requests spent",
			headers: map[string]string{
				"X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Reset-Requests": "20s",
				"X-Ratelimit-Remaining-Tokens": "5000", "X-Ratelimit-Reset-Tokens": "1s",
			},
			cooled:    true,
			resetIn:   20 * time.Second,
			remaining: 0,
		},
		{
			name: "OpenAI tokens spent",
			headers: map[string]string{
				"X-Ratelimit-Remaining-Requests": "12", "X-Ratelimit-Reset-Requests": "1s",
				"X-Ratelimit-Remaining-Tokens": "0", "X-Ratelimit-Reset-Tokens": "6m0s",
			},
			cooled:    true,
			resetIn:   6 * time.Minute,
			remaining: 12,
		},
		{
			name: "Anthropic RFC 3339",
			headers: map[string]string{
				"Anthropic-Ratelimit-Requests-Remaining": "0",
				"Anthropic-Ratelimit-Requests-Reset":     soon.UTC().Format(time.RFC3339),
			},
			cooled:    true,
			resetIn:   90 * time.Second,
			remaining: 0,
		},
		{
			name: "GitHub epoch seconds",
			headers: map[string]string{
				"X-Ratelimit-Remaining": "0",
				"X-Ratelimit-Reset":     strconv.FormatInt(soon.Unix(), 10),
			},
			cooled:    true,
			resetIn:   90 * time.Second,
			remaining: 0,
		},
		{
			name:      "some left",
			headers:   map[string]string{"X-Ratelimit-Remaining-Requests": "59", "X-Ratelimit-Reset-Requests": "1s"},
			remaining: 59,
		},
		{
			name:      "spent with no reset: no guess",
			headers:   map[string]string{"X-Ratelimit-Remaining-Requests": "0"},
			remaining: 0,
		},
		{
			name:      "no headers",
			remaining: -1,
		},
		{
			name:      "garbage",
			headers:   map[string]string{"X-Ratelimit-Remaining-Requests": "lots"},
			remaining: -1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProvider(t, func(string, int) reply { return reply{status: 200, header: tc.headers, body: "ok"} })
			tr := newTransport(t, []string{keyA, keyB}, WithStrategy(FillFirst))
			start := time.Now()
			get(t, tr, p.URL)
			a := tr.Keys()[0]
			assert.Equal(t, tc.remaining, a.Remaining)
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
		{name: "any reads OpenAI", steer: steerAny, h: openai, n: 5, known: true, spent: true},
		{name: "any reads Anthropic", steer: steerAny, h: anthropic, n: 0, known: true, spent: true},
		{name: "any reads GitHub", steer: steerAny, h: github, n: 17, known: true},
		{name: "OpenAI preset", steer: steerOpenAI, h: openai, n: 5, known: true, spent: true},
		{name: "OpenAI preset ignores Anthropic's", steer: steerOpenAI, h: anthropic},
		{name: "Anthropic preset", steer: steerAnthropic, h: anthropic, n: 0, known: true, spent: true},
		{name: "GitHub preset", steer: steerGitHub, h: github, n: 17, known: true},
		{name: "Gemini reports nothing", steer: steerNone, h: openai},
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
