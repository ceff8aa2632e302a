package credpool

import (
	"net/http"
	"time"
)

// verdict is the classifier's decision on one error response.
type verdict struct {
	reason Reason
	final  bool          // an unambiguous revocation: no outage guard, no refresh
	hint   time.Duration // the provider's wait for this verdict, not yet clamped
	hinted bool          // whether the provider gave one
}

// classifier decides what error responses mean. The built-in tables in
// patterns.go cover every provider; a preset or the user adds to them.
type classifier struct {
	rules     []Rule // the user's, tried first
	forbidden Reason // what an unexplained 403 means: ReasonAuth, or ReasonClientError for GitHub
}

// defaultClassifier is the classifier without a preset or rules.
var defaultClassifier = &classifier{forbidden: ReasonAuth}

// classify decides what an error response (status >= 400) means for the key
// that was sent and for the request. The body is parsed once; its codes,
// types and reasons decide first, its message second, the status last,
// because providers report dead keys and spent credit on 400, 402, 403 and
// 429 alike.
func (c *classifier) classify(status int, h http.Header, body []byte, now time.Time) verdict {
	info := parseError(body)
	v := verdict{reason: c.reasonFor(status, h, &info)}
	switch v.reason {
	case ReasonAuthPermanent:
		v.final = info.matches(revoked)
	case ReasonRateLimit:
		v.hint, v.hinted = rateLimitHint(h, &info, now)
		if v.hinted && v.hint >= time.Hour {
			v.reason = ReasonBilling // "retry after 86400 seconds" is a quota
		}
	case ReasonBilling:
		// Gemini's RetryInfo on a per-day quota is the per-minute retry:
		// taken at its word, the key would fail again all day.
		if !info.hasCode("resource_exhausted") {
			v.hint, v.hinted = billingHint(h, &info, now)
		}
	case ReasonOverloaded, ReasonServerError:
		if shouldNotRetry(h) {
			v.reason = ReasonClientError
		} else {
			v.hint, v.hinted = retryAfter(h, now)
		}
	}
	return v
}

// reasonFor is the order of evidence: the user's rules; a request too large
// for any key; a dead key; a request refused for itself; spent quota; a rate limit; an overload; a gateway
// page; and last the status alone.
func (c *classifier) reasonFor(status int, h http.Header, info *errorInfo) Reason {
	for _, r := range c.rules {
		if r.matches(status, info) {
			return r.Reason
		}
	}
	authStatus := status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden
	limitStatus := status == http.StatusForbidden || status == http.StatusTooManyRequests
	switch {
	case status == http.StatusRequestEntityTooLarge || info.matches(tooLarge):
		return ReasonClientError
	case authStatus && info.matches(deadKey):
		return ReasonAuthPermanent
	case status < 500 && info.matches(notTheKey):
		return ReasonClientError
	case info.hasCode("resource_exhausted"):
		if info.dailyQuota() {
			return ReasonBilling
		}
		return ReasonRateLimit
	case status < 500 && (status == http.StatusPaymentRequired || info.matches(billing)):
		return ReasonBilling
	case status == http.StatusTooManyRequests && info.matches(upstreamLimit):
		return ReasonOverloaded
	case (authStatus || limitStatus) && (info.matches(rateLimit) || headerValue(h, "X-Ratelimit-Remaining") == "0" && limitStatus):
		return ReasonRateLimit
	case status == 529 || info.matches(overloaded):
		return ReasonOverloaded
	case info.html && (status == http.StatusUnauthorized || limitStatus || status >= 500):
		return ReasonServerError
	}
	return c.byStatus(status)
}

// byStatus is the verdict when the body says nothing the tables know.
func (c *classifier) byStatus(status int) Reason {
	switch {
	case status == http.StatusForbidden:
		return c.forbidden
	case status == http.StatusUnauthorized:
		return ReasonAuth
	case status == http.StatusPaymentRequired:
		return ReasonBilling
	case status == http.StatusTooManyRequests:
		return ReasonRateLimit
	case serverTrouble(status):
		return ReasonServerError
	}
	return ReasonClientError
}

// rateLimitHint takes the most specific wait a rate-limited response gives:
// the standard headers, Gemini's RetryInfo, the message's own words, then the
// reset of the limit that ran out.
func rateLimitHint(h http.Header, info *errorInfo, now time.Time) (time.Duration, bool) {
	if d, ok := retryAfter(h, now); ok {
		return d, true
	}
	if d, ok := parseReset(info.retryDelay, now); ok {
		return d, true
	}
	if d, ok := messageWait(info.message); ok {
		return d, true
	}
	return limitReset(h, now)
}

// billingHint takes the end of a quota: a date in the message, the standard
// headers, a reset in the body or headers, or a wait in words.
func billingHint(h http.Header, info *errorInfo, now time.Time) (time.Duration, bool) {
	if d, ok := messageDate(info.message, now); ok {
		return d, true
	}
	if d, ok := retryAfter(h, now); ok {
		return d, true
	}
	if d, ok := parseReset(info.reset, now); ok {
		return d, true
	}
	if d, ok := parseReset(headerValue(h, "X-Ratelimit-Reset"), now); ok {
		return d, true
	}
	return messageWait(info.message)
}

// shouldNotRetry reports whether the provider said outright that a retry is
// pointless (OpenAI's x-should-retry, Stripe's Stripe-Should-Retry).
func shouldNotRetry(h http.Header) bool {
	return headerValue(h, "X-Should-Retry") == "false" || headerValue(h, "Stripe-Should-Retry") == "false"
}

// serverTrouble reports whether an error status is worth a retry after a
// backoff: 5xx except 501 Not Implemented, which no retry can fix (the rule of
// go-retryablehttp's policy, which call.go asks about network errors).
func serverTrouble(status int) bool {
	return status >= 500 && status != http.StatusNotImplemented
}
