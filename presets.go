package credpool

import "net/http"

// Presets set, in one word, how a provider takes its key, and the few rules
// that are true of that provider alone. Providers that take the key as
// "Authorization: Bearer" (OpenAI, OpenRouter, Groq, Mistral, DeepSeek, xAI
// and most OpenAI-compatible APIs) need no preset: that is the default. The
// classification of every provider's errors is built in and needs no preset
// either. Presets do not restrict hosts, so that gateways and test servers
// work: add WithHosts for that.

// Anthropic takes the raw key in x-api-key, and drops the Authorization
// header an SDK may have set to a placeholder. Its re-checks (WithRecheck)
// carry the anthropic-version header that every Anthropic request needs.
func Anthropic() Option {
	set := preset("X-Api-Key", "", "Authorization", steerAnthropic)
	return optionFunc(func(c *config) {
		set.apply(c)
		c.recheckHeader = http.Header{"Anthropic-Version": {"2023-06-01"}}
	})
}

// Gemini takes the raw key in x-goog-api-key, as Google's SDKs send it.
func Gemini() Option { return preset("X-Goog-Api-Key", "", "", steerNone) }

// AzureOpenAI takes the raw key in api-key. (With Entra ID tokens, use no preset:
// they go as "Authorization: Bearer", the default.)
func AzureOpenAI() Option { return preset("Api-Key", "", "", steerOpenAI) }

// GitHub takes the token as "Authorization: Bearer". A 403 that is not a rate
// limit is a permission the token lacks for that resource, not a bad token,
// so it is handed back and the token stays in rotation.
func GitHub() Option {
	set := preset("Authorization", "Bearer ", "", steerGitHub)
	return optionFunc(func(c *config) {
		set.apply(c)
		c.classifier.forbidden = ReasonClientError
	})
}

// preset sets how a provider takes its key: the header (canonical), the
// value's prefix, a header to drop from every attempt, and the headers in
// which it reports what a key has left.
func preset(header, prefix, drop string, s steering) Option {
	return optionFunc(func(c *config) {
		c.header, c.prefix, c.drop, c.steering, c.recheckHeader = header, prefix, drop, s, nil
	})
}
