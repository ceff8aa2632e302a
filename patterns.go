package credpool

// signals is one kind of evidence an error body can carry: machine-readable
// codes, matched exactly against the body's code, type, status and reason
// fields, and phrases, matched as whole words in its message outside quoted
// spans. Codes are what providers promise to keep and what no caller can
// write; phrases catch the providers that only say it in words, and the codes
// they write into their prose ("Error: token_invalidated for key"). Each
// table is data: extend it, don't special-case. classify.go weighs them.
type signals struct {
	codes   []string // lower case
	phrases []string // as phrases returns them
	keys    []uint32 // each phrase's firstWordKey
}

// table builds signals from codes and the phrases that say the same in
// words, codes written into prose among them ("token revoked" matches
// "token_revoked" and "token-revoked" alike).
func table(codes []string, words ...string) signals {
	s := signals{codes: codes, phrases: phrases(words...)}
	for _, p := range s.phrases {
		s.keys = append(s.keys, firstWordKey(p))
	}
	return s
}

// request says the request itself is at fault, whatever the status: it is too
// large or too long for any key, names a parameter, value or model that does
// not exist, is refused for its content or the caller's region, or needs an
// entitlement that the account does not have and that no wait and no other
// key of the account gives (Anthropic's 429 "Extra usage is required for long
// context requests"). It goes back to the caller untouched and no key pays.
// Its codes outrank every other evidence but a dead key's codes; its phrases
// can only spare a key, so they are read even where the codes say otherwise.
var request = table([]string{
	// OpenAI's and its clones' validation codes
	"invalid_value", "model_not_found", "unknown_parameter", "unsupported_parameter",
	"unsupported_value", "context_length_exceeded", "string_above_max_length",
	"array_above_max_length", "string_below_min_length", "invalid_type",
	"missing_required_parameter", "integer_below_min_value", "integer_above_max_value",
	"decimal_below_min_value", "decimal_above_max_value", "invalid_image", "invalid_image_url",
	"image_parse_error", "invalid_prompt", "content_filter", "content_policy_violation",
	"unsupported_country_region_territory", "model_not_supported", "unsupported_model",
	"invalid_model", "model_not_available_for_free",
	// Anthropic, llama.cpp, Bedrock, DashScope, Stripe
	"request_too_large", "exceed_context_size_error", "context_window_exceeded",
	"prompt_too_long", "validationexception", "invalidparameter", "datainspectionfailed",
	"card_error", "key_model_access_denied",
},
	// too large or too long for any key of the tier
	"request too large", "reduce your message size", "must be reduced",
	"maximum context length", "context length exceeded", "context length is",
	"prompt is too long", "input is too long", "exceeds the available context size",
	"exceeds the context window", "exceed context size",
	"context window exceeded", "too many input tokens",
	// the model or a parameter does not exist, or the key's account may not use it
	"model does not exist", "model not found", "does not have access to model",
	"do not have access to it", "have access to the model", "not allowed to access model",
	"does not support",
	"unsupported parameter", "unsupported param", "unknown parameter", "unrecognized request argument",
	"is not one of",
	// content, region and entitlements
	"was flagged", "requires moderation", "content management policy",
	"country region or territory not supported", "user location is not supported",
	"not available in your country", "extra usage is required",
)

// entitlement says, on a 403 or 429, that the model or feature is not free:
// a gate on what the request asks for, which no wait lifts. On a 402 or a
// 404 the same words are a wall that credit lifts, so another key may serve:
// billing says so.
var entitlement = table(nil, "is not free", "not available for free", "not free to use")

// requestKind names the generic kinds of error that providers use for a
// faulty request (OpenAI's and Anthropic's invalid_request_error, Google's
// INVALID_ARGUMENT and PERMISSION_DENIED). They use the same kinds for spent
// credit (Anthropic's 400 "credit balance is too low") and for revoked keys
// (Gemini's 403 "reported as leaked"), so a kind blames the request only when
// nothing more specific in the body, codes or words, says otherwise.
var requestKind = table([]string{
	"invalid_request_error", "invalid_argument", "permission_denied", "permission_error",
	"not_found_error", "not_found", "failed_precondition", "out_of_range", "bad_request",
	"badrequest", "badrequesterror", "validation_error", "unprocessable_entity",
	"invalid_request",
})

// deadKey says a key is invalid, revoked or deactivated. It is trusted only on
// 400, 401 and 403: Gemini and xAI report a bad key as 400.
var deadKey = table([]string{
	"invalid_api_key", "account_deactivated", "token_revoked", "token_invalidated",
	"invalid_token", "invalid_grant", "unauthorized_client", "refresh_token_reused",
	"api_key_invalid", "api_key_expired", "consumer_suspended",
	"api_key_service_blocked", "invalidapikey", "invalid_authentication_error",
	"invalid_authentication", "expired_api_key", "expired_key", "access_terminated_error",
	"organization_restricted", "token_not_found_in_db", "1002",
},
	"incorrect api key", "invalid api key", "api key is invalid", "api key invalid",
	"api key is not valid", "invalid x api key", "api key not valid", "api key not found",
	"api key expired", "api key has expired", "api key is expired", "api key has been disabled",
	"api key is disabled", "invalid subscription key", "bad credentials", "user not found",
	"key has been deactivated", "deactivated account", "has been deactivated", "is deactivated",
	"account deactivated", "has been revoked", "was revoked", "key revoked", "key is revoked",
	"has been invalidated", "reported as leaked", "has been suspended", "account suspended",
	"is suspended", "authentication fails", "invalid authentication", "unknown api key",
	"no such api key", "has been disabled", "has been restricted", "access terminated",
	"invalid api token", "invalid proxy server token", "expired key",
	"token included in the request is invalid", "token 非法", "token revoked", "token invalidated", "invalid grant",
	"refresh token reused", "consumer suspended", "unauthorized client",
	"api key无效", "无效的令牌", "令牌已过期", "令牌已被禁用", "身份验证失败", "apikey无效",
)

// revoked is the part of deadKey that no outage or misconfiguration produces:
// the provider's code says the key was revoked or its account shut. Only a
// code makes a verdict final, past the outage guard; words refine a verdict
// the codes already made, never make one, since a caller can write words.
var revoked = table([]string{
	"token_revoked", "token_invalidated", "account_deactivated", "consumer_suspended",
	"refresh_token_reused", "invalid_grant",
}, "deactivated", "revoked", "invalidated", "leaked", "suspended")

// keyBilling says a billing limit is the key's own (a credit or spend limit
// set on the key), not its account's: the key cools alone, even in a quota
// group.
var keyBilling = table([]string{
	"key_limit_exceeded", "key_budget_exceeded", "key_quota_exceeded",
},
	"key limit exceeded", "limit for this key", "this key has", "key's limit", "key budget",
	"budget for this key", "key quota",
)

// billing says the account or key has no credit or quota left, for a day, a
// week, a month or until someone pays: waiting minutes will not help, so the
// key cools for long. Another key, on another plan or account, may serve.
var billing = table([]string{
	"insufficient_quota", "billing_error", "credit_balance_exhausted",
	"organization_spend_limit_exceeded", "project_spend_limit_exceeded",
	"organization_usage_limit_exceeded", "usage_limit_reached", "terminal_quota_exhausted",
	"quota_exhausted", "budget_exceeded", "insufficient_balance", "insufficient_user_quota",
	"exceeded_current_quota_error", "arrearage", "payment_required", "key_limit_exceeded",
	"1113",
},
	"exceeded your current quota", "credit balance is too low", "insufficient balance",
	"insufficient credits", "insufficient funds", "requires more credits", "can only afford",
	"used all available credits", "out of credits", "credits exhausted", "no credits",
	"spending limit", "spend limit", "spend cap", "api usage limits", "usage limit reached",
	"usage limit has been reached", "reached your usage limit", "extra usage", "session usage limit",
	"hourly usage limit", "wait or upgrade", "upgrade for higher limits",
	"hard limit", "billing limit", "budget has been exceeded", "budget exceeded",
	"exceeded budget", "key limit exceeded", "monthly limit", "monthly quota",
	"monthly spending", "weekly limit", "weekly quota", "daily limit", "daily quota",
	"quota for today", "quota exhausted", "quota has been exhausted", "quota reached",
	"per day", "per month", "per week", "perday", "tpd", "rpd", "calls month", "check your plan and billing",
	"insufficient quota", "credit balance exhausted", "usage limit exceeded",
	"insufficient user quota", "exceeded current quota",
	"payment required", "not on the free tier", "out of call volume quota",
	"quota will be replenished", "have any credits", "purchase credits", "requires credits",
	"needs credits", "credits required", "not available on the free tier", "only available on paid",
	"余额不足", "额度已用尽", "额度不足", "欠费", "配额已用尽",
)

// rateLimit says the key hit a short-term limit, whatever the status (GitHub
// uses 403, Stripe 400).
var rateLimit = table([]string{
	"rate_limit", "rate_limited", "rate_limit_exceeded", "rate_limit_error", "too_many_requests",
	"throttling", "throttlingexception", "throttling.ratequota", "rate_limit_reached_error",
	"requests", "tokens", "1302", "1303",
},
	"rate limit", "rate limited", "too many requests", "requests per minute",
	"tokens per minute", "per minute", "secondary rate limit", "slow down", "throttled",
	"请求过于频繁", "速率限制", "并发数过高",
)

// upstreamLimit says an aggregator's upstream is rate limited for everyone:
// the limit is not the key's, so another key does not help but a backoff may.
var upstreamLimit = table(nil,
	"rate limited upstream", "provider returned error", "upstream rate limit",
)

// overloaded says the provider is shedding load, not failing the key, on any
// status: a 429 whose type says overloaded, a model still loading. The
// request is retried after a backoff and the key kept.
var overloaded = table([]string{
	"overloaded_error", "server_is_overloaded", "unavailable", "service_unavailable",
	"service_unavailable_error", "unavailable_error", "engine_overloaded_error",
	"model_capacity_exhausted", "server_overloaded", "serviceunavailableexception", "modelnotreadyexception", "1305",
},
	"overloaded", "capacity exceeded", "over capacity", "at capacity", "out of capacity",
	"no capacity", "temporarily unavailable", "service unavailable", "server is busy",
	"server busy", "high demand", "no deployments available", "memory limit", "out of memory", "服务器繁忙", "系统繁忙", "访问量过大",
)

// serverFault says the provider failed, on any status (a 403 whose code says
// server_error): retried after a backoff, the key kept.
var serverFault = table([]string{
	"server_error", "upstream_unavailable", "internal_error", "internalserverexception",
	"timeout_error", "deadline_exceeded",
})

// refused says the provider refused the key for a reason that is not its
// death: the project has not enabled the API, a credential of another kind is
// expected, no key reached it. Another key may serve; this one cools.
var refused = table([]string{
	"service_disabled", "credentials_missing", "api_key_required", "no_organization",
	"1001", "1003",
})

// authKind names the generic kinds of authentication failure (Anthropic's and
// DeepSeek's authentication_error, LiteLLM's auth_error). On a 401 they mean
// a dead key when nothing more specific says otherwise.
var authKind = table([]string{"authentication_error", "auth_error"})

// zeroLimit is Gemini's word for a model that the key's tier does not
// include: "limit: 0".
var zeroLimit = table(nil, "limit 0")
