package credpool

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestWeighOrder pins the order of evidence in weigh, one row per rule of
// it. The provider fixtures check real bodies; these check the rules.
func TestWeighOrder(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		echo   string // the caller's words, "" for none
		want   Reason
		prose  bool
		final  bool
	}{
		// 1. The seed's evidence in the message.
		{name: "a message that is only a revocation code", status: 401,
			body: `{"error":{"message":"token_revoked"}}`, want: ReasonAuthPermanent, final: true},
		{name: "a code written into prose", status: 401,
			body: `{"error":{"message":"Error: token_invalidated for key"}}`, want: ReasonAuthPermanent, prose: true},
		{name: "invalid_api_key in prose", status: 401,
			body: `{"error":{"message":"invalid_api_key"}}`, want: ReasonAuthPermanent},
		{name: "api key is invalid in words", status: 401,
			body: `{"message":"API key is invalid"}`, want: ReasonAuthPermanent, prose: true},
		{name: "account is deactivated on a 403", status: 403,
			body: `{"message":"This account is deactivated"}`, want: ReasonAuthPermanent, prose: true},
		{name: "a bare code on a 400 is not trusted as a code", status: 400,
			body: `{"error":{"message":"token_revoked"}}`, want: ReasonAuthPermanent, prose: true},

		// 2. The request's own codes decide, on any status.
		{name: "invalid_value quoting a revocation", status: 400,
			body: `{"error":{"message":"Invalid value: 'this key has been revoked'.","type":"invalid_request_error","param":"messages[0].role","code":"invalid_value"}}`,
			want: ReasonClientError},
		{name: "model_not_found quoting a quota", status: 404,
			body: "{\"error\":{\"message\":\"The model `x per day. You will regain access on 2099-01-01 at 00:00 UTC` does not exist\",\"type\":\"invalid_request_error\",\"code\":\"model_not_found\"}}",
			want: ReasonClientError},
		{name: "model_not_found on a 403", status: 403,
			body: "{\"error\":{\"message\":\"Project `proj_x` does not have access to model `gpt-5`\",\"type\":\"invalid_request_error\",\"code\":\"model_not_found\"}}",
			want: ReasonClientError},
		{name: "a request code on a 429", status: 429,
			body: `{"error":{"message":"this key has been revoked","code":"context_length_exceeded"}}`, want: ReasonClientError},
		{name: "a request code on a 5xx fails the same every time", status: 500,
			body: `{"error":{"message":"Unrecognized request argument supplied: foo","type":"invalid_request_error","code":"unknown_parameter"}}`,
			want: ReasonClientError},
		{name: "a generic kind on a 5xx", status: 500,
			body: `{"error":{"message":"bad input","type":"invalid_request_error"}}`, want: ReasonClientError},
		{name: "a generic kind does not outrank words about credit", status: 400,
			body: `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}`,
			want: ReasonBilling, prose: true},
		{name: "a key code outranks a request kind", status: 401,
			body: `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`,
			want: ReasonAuthPermanent},

		// 2. Words the caller wrote are never evidence against a key.
		{name: "quoted words", status: 400,
			body: `{"error":{"message":"'this key has been revoked' is not one of ['system', 'user']","type":"invalid_request_error","code":null}}`,
			want: ReasonClientError},
		{name: "unquoted words the request carries", status: 401,
			body: `{"error":{"message":"Invalid role: this key has been revoked"}}`, echo: "this key has been revoked",
			want: ReasonAuth},
		{name: "a quota the request carries", status: 400,
			body: `{"error":{"message":"Invalid value x per day for model"}}`, echo: "x per day",
			want: ReasonClientError},

		// 3. Quota, in words and codes.
		{name: "daily quota in words", status: 429, body: `{"message":"Daily quota exhausted"}`, want: ReasonBilling, prose: true},
		{name: "monthly quota in words", status: 429, body: `{"message":"Monthly quota reached"}`, want: ReasonBilling, prose: true},
		{name: "hard billing limit", status: 400, body: `{"error":{"message":"Billing hard limit has been reached"}}`,
			want: ReasonBilling, prose: true},
		{name: "usage_limit_reached with no reset", status: 429,
			body: `{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached"}}`, want: ReasonBilling},
		{name: "terminal_quota_exhausted", status: 429, body: `{"error":{"code":"terminal_quota_exhausted"}}`, want: ReasonBilling},
		{name: "a per-key spend cap on a 403", status: 403, body: `{"error":{"message":"Key limit exceeded","code":403}}`,
			want: ReasonBilling, prose: true},
		{name: "a rate code on requests per day is quota", status: 429,
			body: `{"error":{"message":"Rate limit reached on requests per day (RPD)","code":"rate_limit_exceeded"}}`,
			want: ReasonBilling, prose: true},

		// 4. Entitlements: the request's, not the key's.
		{name: "extra usage for long context", status: 429,
			body: `{"type":"error","error":{"type":"rate_limit_error","message":"Extra usage is required for long context requests."}}`,
			want: ReasonClientError},

		// 5. Transient, mislabelled as key trouble.
		{name: "a 429 whose type says overloaded", status: 429,
			body: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, want: ReasonOverloaded},
		{name: "upstream temporarily unavailable on a 429", status: 429,
			body: `{"error":{"message":"Upstream provider temporarily unavailable"}}`, want: ReasonOverloaded},
		{name: "a 403 whose code says server_error", status: 403,
			body: `{"error":{"message":"Something went wrong","code":"server_error"}}`, want: ReasonServerError},
		{name: "a 403 whose code says upstream_unavailable", status: 403,
			body: `{"error":{"code":"upstream_unavailable"}}`, want: ReasonServerError},
		{name: "408 Request Timeout", status: 408, body: ``, want: ReasonServerError},

		// 6. Deterministic failures behind a 5xx.
		{name: "a local engine's context overflow on a 500", status: 500,
			body: `{"error":{"code":500,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}}`,
			want: ReasonClientError},
		{name: "unsupported_parameter on a 503", status: 503,
			body: `{"error":{"code":"unsupported_parameter","message":"Unsupported parameter: 'temperature'"}}`, want: ReasonClientError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var echoed func(string) bool
			if tc.echo != "" {
				said := words(strings.ToLower(tc.echo))
				echoed = func(p string) bool { return containsPhrase(said, p) }
			}
			v := defaultClassifier.classify(tc.status, http.Header{}, []byte(tc.body), testNow, echoed)
			assert.Equal(t, tc.want, v.reason, "reason")
			assert.Equal(t, tc.prose, v.prose, "prose")
			assert.Equal(t, tc.final, v.final, "final")
		})
	}
}

// TestProseIsNeverFinal: words can take a key out of rotation, but never past
// the outage guard; only a provider's code can.
func TestProseIsNeverFinal(t *testing.T) {
	for _, msg := range []string{"This key has been revoked", "Your API key was reported as leaked", "Account suspended",
		"token_revoked for this key", "The account has been deactivated"} {
		for _, status := range []int{400, 401, 403} {
			v := defaultClassifier.classify(status, http.Header{}, []byte(`{"error":{"message":"`+msg+`"}}`), testNow, nil)
			assert.False(t, v.final, "%d %q", status, msg)
		}
	}
}

// TestResetsInBodyFields: resets_in_seconds, resets_at and retry_after in the
// body are honoured, and the longest stated wait wins.
func TestResetsInBodyFields(t *testing.T) {
	cases := []struct {
		name, body string
		header     http.Header
		want       Reason
		hint       time.Duration
	}{
		{name: "resets_in_seconds", body: `{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","resets_in_seconds":23400}}`,
			want: ReasonBilling, hint: 6*time.Hour + 30*time.Minute},
		{name: "resets_at epoch seconds", body: `{"error":{"type":"usage_limit_reached","resets_at":1772388000}}`,
			want: ReasonBilling, hint: 6 * time.Hour},
		{name: "retry_after in the body", body: `{"error":{"message":"Rate limit exceeded","retry_after":42}}`,
			want: ReasonRateLimit, hint: 42 * time.Second},
		{name: "the body names a later reset than the header", body: `{"error":{"message":"Rate limit exceeded. Resets in 6hr 29min"}}`,
			header: http.Header{"Retry-After": {"60"}}, want: ReasonBilling, hint: 6*time.Hour + 29*time.Minute},
		{name: "a rate limit named in prose", body: `{"message":"Too many requests, available in 42 minutes"}`,
			want: ReasonRateLimit, hint: 42 * time.Minute},
		{name: "midnight UTC", body: `{"message":"Daily limit reached. Resets at midnight UTC."}`,
			want: ReasonBilling, hint: 12 * time.Hour},
		{name: "tomorrow", body: `{"message":"You have used your quota for today, try again tomorrow"}`,
			want: ReasonBilling, hint: 12 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			v := defaultClassifier.classify(429, h, []byte(tc.body), testNow, nil)
			assert.Equal(t, tc.want, v.reason)
			if assert.True(t, v.hinted) {
				assert.Equal(t, tc.hint, v.hint)
			}
		})
	}
}

// TestEntitlementByStatus: "not free" on a 429 is a gate on the request; on a
// 402 or 404 it is a wall that another key's credit lifts.
func TestEntitlementByStatus(t *testing.T) {
	body := []byte(`{"error":{"message":"This model is not free. Add credits to use it."}}`)
	for status, want := range map[int]Reason{429: ReasonClientError, 403: ReasonClientError, 402: ReasonBilling} {
		assert.Equal(t, want, defaultClassifier.classify(status, http.Header{}, body, testNow, nil).reason, "%d", status)
	}
	wall := []byte(`{"error":{"message":"This model is not available on the free tier","code":404}}`)
	assert.Equal(t, ReasonBilling, defaultClassifier.classify(404, http.Header{}, wall, testNow, nil).reason)
}
