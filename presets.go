package credpool

// Presets set, in one word, how a provider takes its key, and the few rules
// that are true of that provider alone. The classification of every
// provider's errors is built in and needs no preset. Presets do not restrict
// hosts, so that gateways and test servers work: add WithHosts for that.

// OpenAI takes the key as "Authorization: Bearer".
func OpenAI() Option { return withSteering(bearer, steerOpenAI) }

// Anthropic takes the raw key in x-api-key, and drops the Authorization
// header an SDK may have set to a placeholder.
func Anthropic() Option {
	return func(c *config) {
		c.header, c.prefix, c.drop = "X-Api-Key", "", "Authorization"
		c.steering = steerAnthropic
	}
}

// Gemini takes the raw key in x-goog-api-key, as Google's SDKs send it.
func Gemini() Option {
	return func(c *config) { c.header, c.prefix, c.drop, c.steering = "X-Goog-Api-Key", "", "", steerNone }
}

// AzureOpenAI takes the raw key in api-key. (With Entra ID tokens, use OpenAI
// instead: they go as "Authorization: Bearer".)
func AzureOpenAI() Option {
	return func(c *config) { c.header, c.prefix, c.drop, c.steering = "Api-Key", "", "", steerOpenAI }
}

// OpenRouter takes the key as "Authorization: Bearer".
func OpenRouter() Option { return bearer }

// Groq takes the key as "Authorization: Bearer".
func Groq() Option { return withSteering(bearer, steerOpenAI) }

// Mistral takes the key as "Authorization: Bearer".
func Mistral() Option { return bearer }

// DeepSeek takes the key as "Authorization: Bearer".
func DeepSeek() Option { return bearer }

// XAI takes the key as "Authorization: Bearer".
func XAI() Option { return bearer }

// GitHub takes the token as "Authorization: Bearer". A 403 that is not a rate
// limit is a permission the token lacks for that resource, not a bad token,
// so it is handed back and the token stays in rotation.
func GitHub() Option {
	return func(c *config) {
		bearer(c)
		c.classifier.forbidden = ReasonClientError
		c.steering = steerGitHub
	}
}

func bearer(c *config) {
	c.header, c.prefix, c.drop, c.steering = "Authorization", "Bearer ", "", steerAny
}

// withSteering is a preset that also narrows steering to its provider's
// headers.
func withSteering(preset func(*config), s steering) Option {
	return func(c *config) {
		preset(c)
		c.steering = s
	}
}
