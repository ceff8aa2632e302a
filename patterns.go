package credpool

// signals is one verdict's evidence in an error body: machine-readable codes,
// matched exactly against the body's code, type, status and reason fields,
// and phrases, matched as substrings of its message. All are lower case.
// Codes are what providers promise to keep; phrases catch the providers that
// only say it in words. Each table is data: extend it, don't special-case.
type signals struct {
	codes   []string
	phrases []string
}

// tooLarge says the request is larger than the key's limit allows: neither
// waiting nor another key of the same tier helps, so it goes back to the
// caller even when it comes as a 429 (OpenAI) or a 413 (Groq).
var tooLarge = signals{
	phrases: []string{"request too large", "reduce your message size", "must be reduced"},
}

// deadKey says a key is invalid, revoked or deactivated. It is trusted only on
// 400, 401 and 403: Gemini and xAI report a bad key as 400.
var deadKey = signals{
	codes: []string{
		"invalid_api_key", "account_deactivated", "token_revoked", "token_invalidated",
		"invalid_token", "invalid_grant", "unauthorized_client", "refresh_token_reused",
		"authentication_error", "api_key_invalid", "api_key_expired", "consumer_suspended",
		"api_key_service_blocked",
	},
	phrases: []string{
		"incorrect api key", "invalid api key", "invalid x-api-key", "api key not valid",
		"api key not found", "api key expired", "bad credentials", "invalid subscription key",
		"user not found", "key has been deactivated", "deactivated account", "has been deactivated",
		"has been revoked", "has been invalidated", "reported as leaked", "has been suspended",
		"authentication fails",
	},
}

// revoked is the part of deadKey that no outage or misconfiguration can
// produce: the provider says the key itself was revoked or its account shut.
// The outage guard never second-guesses these.
var revoked = signals{
	codes: []string{
		"token_revoked", "token_invalidated", "account_deactivated", "consumer_suspended",
		"refresh_token_reused", "invalid_grant",
	},
	phrases: []string{"deactivated", "revoked", "invalidated", "leaked", "suspended"},
}

// billing says the account or key has no credit or quota left: waiting
// minutes will not help, so the key cools for long. Per-day limits are quota
// too.
var billing = signals{
	codes: []string{
		"insufficient_quota", "billing_error", "credit_balance_exhausted",
		"organization_spend_limit_exceeded", "project_spend_limit_exceeded",
		"organization_usage_limit_exceeded",
	},
	phrases: []string{
		"exceeded your current quota", "credit balance is too low", "insufficient balance",
		"insufficient credits", "requires more credits", "can only afford",
		"used all available credits", "spending limit", "spend limit", "usage limits",
		"out of call volume quota", "per day", "per-day", "perday",
	},
}

// rateLimit says the key hit a short-term limit, whatever the status (GitHub
// uses 403, Stripe 400).
var rateLimit = signals{
	codes:   []string{"rate_limit", "rate_limited", "rate_limit_exceeded", "rate_limit_error"},
	phrases: []string{"secondary rate limit", "rate limit exceeded"},
}

// upstreamLimit says an aggregator's upstream is rate limited for everyone:
// the limit is not the key's, so another key does not help but a backoff may.
var upstreamLimit = signals{
	phrases: []string{"rate-limited upstream", "provider returned error"},
}

// overloaded says the provider is shedding load, not failing the key.
var overloaded = signals{
	codes:   []string{"overloaded_error", "server_is_overloaded", "unavailable"},
	phrases: []string{"overloaded", "capacity exceeded"},
}

// notTheKey says the provider refused the request itself, not the key: a card
// declined (Stripe's 402), flagged content (OpenRouter's 403), a model or
// method the key may not use (Google's PERMISSION_DENIED), the caller's
// region. Cooling a good key for these would punish it for a user's input.
var notTheKey = signals{
	codes: []string{"card_error", "permission_denied", "unsupported_country_region_territory"},
	phrases: []string{
		"was flagged", "requires moderation", "country, region, or territory not supported",
	},
}
