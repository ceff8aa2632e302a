package credpool

// signals is one verdict's evidence in an error body: machine-readable codes,
// matched exactly against the body's code, type, status and reason fields,
// and phrases, matched as substrings of its message. Both are lower case.
// Codes are trusted first; phrases catch providers that only say it in words.
type signals struct {
	codes   []string
	phrases []string
}

// deadKey says a key is revoked, invalid or deactivated: it will never work
// again, and only Reset brings it back.
var deadKey = signals{
	codes: []string{
		"invalid_api_key", "account_deactivated",
		"token_revoked", "token_invalidated", "invalid_token",
		"invalid_grant", "unauthorized_client", "refresh_token_reused",
	},
	phrases: []string{
		"token_revoked", "token_invalidated", "invalid_api_key",
		"incorrect api key", "invalid api key",
		"key has been deactivated", "associated with a deactivated account",
		"account associated with this api key has been deactivated",
		"token has been revoked", "token has been invalidated",
	},
}

// billing says the account has no credit or quota left: waiting minutes will
// not help, so the key cools for long.
var billing = signals{
	codes: []string{
		"insufficient_quota", "billing_error", "credit_balance_exhausted",
		"organization_spend_limit_exceeded", "project_spend_limit_exceeded",
		"organization_usage_limit_exceeded",
	},
	phrases: []string{
		"exceeded your current quota", "credit balance is too low",
		"insufficient balance", "insufficient credits",
	},
}

// overloaded says the provider is shedding load, not failing.
var overloaded = signals{
	codes:   []string{"overloaded_error", "server_is_overloaded"},
	phrases: []string{"overloaded"},
}
