package credpool

import (
	"net/http"
	"strconv"
)

// Proactive steering: providers say on every success how much of a key's
// window is left. A key that reports nothing left is cooled until its window
// resets, before it earns a 429 on a user's request. Only a handful of
// canonical header names are looked up, so the success path stays cheap.

// remainingHeaders name the count of requests left, by provider.
var remainingHeaders = [...]string{
	"X-Ratelimit-Remaining-Requests",         // OpenAI, Groq, Azure
	"Anthropic-Ratelimit-Requests-Remaining", // Anthropic
	"X-Ratelimit-Remaining",                  // GitHub, OpenRouter
}

// tokenHeaders name the count of tokens left.
var tokenHeaders = [...]string{
	"X-Ratelimit-Remaining-Tokens",
	"Anthropic-Ratelimit-Tokens-Remaining",
}

// remainingRequests returns the provider's count of requests left, if it
// gave one.
func remainingRequests(h http.Header) (int64, bool) {
	for _, name := range remainingHeaders {
		if v := h[name]; len(v) > 0 {
			n, err := strconv.ParseInt(v[0], 10, 64)
			return n, err == nil && n >= 0
		}
	}
	return 0, false
}

// spent reports whether the response says the key has no requests or tokens
// left in its window.
func spent(h http.Header, remaining int64, known bool) bool {
	if known && remaining == 0 {
		return true
	}
	for _, name := range tokenHeaders {
		if headerValue(h, name) == "0" {
			return true
		}
	}
	return false
}
