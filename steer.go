package credpool

import (
	"net/http"
	"strconv"
)

// Proactive steering: providers say on every success how much of a key's
// window is left. A key that reports nothing left is cooled until its window
// resets, before it earns a 429 on a user's request. Only a handful of
// canonical header names are looked up, and a preset narrows them to its
// provider's, so the success path stays cheap.

// steering names the headers in which a provider reports what is left.
type steering struct {
	requests []string // requests left, the first present wins
	tokens   []string // tokens left, read only when requests are reported
}

// steerAny reads every provider's headers: the default, without a preset.
var steerAny = steering{
	requests: []string{
		"X-Ratelimit-Remaining-Requests",         // OpenAI, Groq, Azure
		"Anthropic-Ratelimit-Requests-Remaining", // Anthropic
		"X-Ratelimit-Remaining",                  // GitHub, OpenRouter
	},
	tokens: []string{"X-Ratelimit-Remaining-Tokens", "Anthropic-Ratelimit-Tokens-Remaining"},
}

// The presets' narrower sets.
var (
	steerOpenAI    = steering{requests: steerAny.requests[:1], tokens: steerAny.tokens[:1]}
	steerAnthropic = steering{requests: steerAny.requests[1:2], tokens: steerAny.tokens[1:]}
	steerGitHub    = steering{requests: steerAny.requests[2:]}
	steerNone      = steering{} // Gemini reports nothing on a success
)

// remaining returns the provider's count of requests left, if it gave one.
func (s *steering) remaining(h http.Header) (int64, bool) {
	for _, name := range s.requests {
		if v := h[name]; len(v) > 0 {
			n, err := strconv.ParseInt(v[0], 10, 64)
			return n, err == nil && n >= 0
		}
	}
	return 0, false
}

// spent reports whether a response that reported its remaining requests says
// the key has no requests or tokens left in its window.
func (s *steering) spent(h http.Header, remaining int64) bool {
	if remaining == 0 {
		return true
	}
	for _, name := range s.tokens {
		if headerValue(h, name) == "0" {
			return true
		}
	}
	return false
}
