package credpool

import (
	"net/http"
	"strings"
	"time"
)

// verdict is the classifier's decision on one error response.
type verdict struct {
	reason Reason
	final  bool          // an unambiguous revocation, by the provider's code: no outage guard, no refresh
	hint   time.Duration // the provider's wait for this verdict, not yet clamped
	hinted bool          // whether the provider gave one
	prose  bool          // the key pays on the message's words alone: see call.penalize

	// accountWide: a billing verdict on the provider's code or status whose
	// evidence is the account's (its credit, an organization's or project's
	// spend limit), not this key's own limit: the key's quota group cools
	// with it (WithGroups). Words alone never cool a group.
	accountWide bool
}

// classifier decides what error responses mean. The built-in tables in
// patterns.go cover every provider; a preset or the user adds to them.
type classifier struct {
	rules     []Rule // the user's, tried first
	forbidden Reason // what an unexplained 403 means: ReasonAuth, or ReasonClientError for GitHub
}

// defaultClassifier is the classifier without a preset or rules.
var defaultClassifier = &classifier{forbidden: ReasonAuth}

// evidence is what one error response says, sorted by who could have written
// it. The provider's codes are its own; its message may quote the caller,
// so words that would cost a key are read outside quoted spans only, and not
// at all where the caller's own request carries them.
type evidence struct {
	status int
	header http.Header
	info   errorInfo
	prose  prose                    // the message made ready to read: see read
	ready  bool                     // prose is made
	echoed func(phrase string) bool // whether the request carries phrase; nil: it carries none
}

// read returns the message made ready to read. It is made at the first
// question, so a verdict that the codes decide alone never pays for it.
func (e *evidence) read() *prose {
	if !e.ready {
		e.prose, e.ready = readProse(e.info.message), true
	}
	return &e.prose
}

// code reports whether the body's codes are among s's.
func (e *evidence) code(s signals) bool { return e.info.hasCode(s.codes...) }

// says reports whether the message says one of s's phrases. It is for
// evidence that can only spare a key: whoever wrote the words, reading them
// costs no key anything.
func (e *evidence) says(s signals) bool {
	msg := e.read()
	for i, p := range s.phrases {
		if msg.hasKeyed(p, s.keys[i]) {
			return true
		}
	}
	return false
}

// claims reports whether the message says one of s's phrases in words the
// caller did not send. It is for evidence that costs a key.
func (e *evidence) claims(s signals) bool {
	msg := e.read()
	for i, p := range s.phrases {
		if msg.hasKeyed(p, s.keys[i]) && (e.echoed == nil || !e.echoed(p)) {
			return true
		}
	}
	return false
}

// classify decides what an error response (status >= 400) means for the key
// that was sent and for the request. echoed reports whether the caller's
// request carries a phrase; nil when it is known to carry none.
func (c *classifier) classify(status int, h http.Header, body []byte, now time.Time, echoed func(string) bool) verdict {
	e := evidence{status: status, header: h, info: parseError(body), echoed: echoed}
	if t := headerValue(h, "X-Amzn-Errortype"); t != "" { // AWS: "ThrottlingException:http://..."
		t, _, _ = strings.Cut(t, ":")
		e.info.codes = append(e.info.codes, strings.ToLower(t))
	}
	if e.info.bare != "" && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
		// A 401 whose whole message is "token_revoked" states a code, and
		// no provider quotes a caller's input bare in a 401.
		e.info.codes = append(e.info.codes, e.info.bare)
	}
	v := verdict{}
	v.reason, v.prose = c.weigh(&e)
	switch v.reason {
	case ReasonAuthPermanent:
		v.final = !v.prose && (e.code(revoked) || (e.code(deadKey) || e.authKind()) && e.claims(revoked))
	case ReasonRateLimit:
		v.hint, v.hinted = rateLimitHint(&e, now)
		if v.hinted && v.hint >= time.Hour {
			v.reason = ReasonBilling // "retry after 86400 seconds" is a quota, and an account's
			v.accountWide = !v.prose
		}
	case ReasonBilling:
		// Gemini's RetryInfo on a per-day quota is the per-minute retry:
		// taken at its word, the key would fail again all day.
		if !e.info.hasCode("resource_exhausted") {
			v.hint, v.hinted = billingHint(&e, now)
		}
		v.accountWide = !v.prose && !e.code(keyBilling) && !e.claims(keyBilling)
	case ReasonOverloaded, ReasonServerError:
		if shouldNotRetry(h) {
			v.reason = ReasonClientError
		} else {
			v.hint, v.hinted = retryAfter(h, now)
		}
	}
	return v
}

// weigh is the order of evidence, strongest first, and the one place that
// decides: the user's rules; a dead key's codes; anything that says the
// request is at fault (codes, a named field, or words, which can only spare a
// key); the codes of spent quota, a rate limit and the provider's trouble;
// then, where the codes are silent or only name a generic kind, the words,
// which may cost the key (prose is true); and last the status. A generic
// kind such as invalid_request_error blames the request only when nothing
// more specific spoke.
func (c *classifier) weigh(e *evidence) (r Reason, prose bool) {
	if r, prose, ok := c.byRule(e); ok {
		return r, prose
	}
	status := e.status
	auth := status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden
	limit := status == http.StatusForbidden || status == http.StatusTooManyRequests
	switch {
	case auth && e.code(deadKey):
		return ReasonAuthPermanent, false
	case auth && e.code(refused):
		return ReasonAuth, false
	case status == http.StatusRequestEntityTooLarge || e.code(request) || e.info.field || e.says(request),
		limit && e.says(entitlement):
		return ReasonClientError, false
	case e.code(billing):
		return ReasonBilling, false
	case e.code(overloaded):
		return ReasonOverloaded, false
	case e.code(serverFault):
		if e.says(overloaded) {
			return ReasonOverloaded, false // OpenAI's server_error "That model is currently overloaded"
		}
		return ReasonServerError, false
	case e.info.hasCode("resource_exhausted"): // Google: per day is quota, limit 0 a tier without the model
		if e.says(overloaded) {
			return ReasonOverloaded, false
		}
		if e.info.dailyQuota() {
			return ReasonBilling, false
		}
		if e.claims(zeroLimit) {
			return ReasonBilling, true
		}
		return ReasonRateLimit, false
	case (auth || limit) && e.code(rateLimit):
		if e.claims(billing) {
			return ReasonBilling, true // "rate_limit_exceeded" on requests per day
		}
		return ReasonRateLimit, false
	case status == http.StatusTooManyRequests && e.says(upstreamLimit):
		return ReasonOverloaded, false
	case e.info.html && (status == http.StatusUnauthorized || limit || status >= 500):
		return ReasonServerError, false // a gateway's page: its words are not the API's
	case auth && e.claims(deadKey):
		return ReasonAuthPermanent, !e.authKind() // a 401 authentication_error is the provider's word too
	case status == http.StatusPaymentRequired:
		return ReasonBilling, false
	case status < 500 && e.claims(billing):
		return ReasonBilling, true
	case (auth || limit) && e.claims(rateLimit):
		return ReasonRateLimit, status != http.StatusTooManyRequests
	case limit && headerValue(e.header, "X-Ratelimit-Remaining") == "0":
		return ReasonRateLimit, false
	case status == 529 || e.says(overloaded):
		return ReasonOverloaded, false
	case e.authKind():
		return ReasonAuthPermanent, false
	case e.code(requestKind) && status != http.StatusUnauthorized && status != http.StatusTooManyRequests:
		return ReasonClientError, false
	}
	return c.byStatus(status), false
}

// authKind reports whether a 401's codes name a generic authentication
// failure, which means a dead key unless something more specific spoke.
func (e *evidence) authKind() bool {
	return e.status == http.StatusUnauthorized && e.code(authKind)
}

// byRule applies the user's rules. A rule that matched on a phrase alone
// rests on words, which the caller may have written: it is read like the
// built-in phrases.
func (c *classifier) byRule(e *evidence) (Reason, bool, bool) {
	for i := range c.rules {
		r := &c.rules[i]
		if r.matches(e) {
			return r.Reason, r.Code == "" && r.Phrase != "", true
		}
	}
	return "", false, false
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
	case status == http.StatusRequestTimeout: // RFC 9110 invites a retry
		return ReasonServerError
	case serverTrouble(status):
		return ReasonServerError
	}
	return ReasonClientError
}

// rateLimitHint takes the longest wait a rate-limited response states: the
// standard headers (or, without them, the reset of the limit that ran out),
// Gemini's RetryInfo, a wait in the body's fields, and the message's words.
// A key must wait for every limit it hit, and a message naming a reset hours
// away must not be probed every minute. The words come last: only a wait
// longer than the others needs the caller's request read.
func rateLimitHint(e *evidence, now time.Time) (time.Duration, bool) {
	d, ok := retryAfter(e.header, now)
	if !ok {
		d, ok = limitReset(e.header, now)
	}
	d, ok = longest(d, ok,
		func() (time.Duration, bool) { return parseReset(e.info.retryDelay, now) },
		func() (time.Duration, bool) { return bodyReset(&e.info, now) })
	return proseWaitOver(e.read(), now, e.echoed, d, ok)
}

// billingHint takes the longest wait a spent quota states: the standard
// headers, a reset in the body or the headers, and the message's words.
func billingHint(e *evidence, now time.Time) (time.Duration, bool) {
	d, ok := retryAfter(e.header, now)
	d, ok = longest(d, ok,
		func() (time.Duration, bool) { return bodyReset(&e.info, now) },
		func() (time.Duration, bool) { return parseReset(headerValue(e.header, "X-Ratelimit-Reset"), now) })
	return proseWaitOver(e.read(), now, e.echoed, d, ok)
}

// bodyReset reads the reset fields of an error body: an absolute or relative
// reset (resets_at, OpenRouter's metadata) and a wait in seconds
// (resets_in_seconds, retry_after), the longer of the two.
func bodyReset(info *errorInfo, now time.Time) (time.Duration, bool) {
	d, ok := parseReset(info.reset, now)
	return longest(d, ok, func() (time.Duration, bool) { return parseSeconds(info.wait) })
}

// longest returns the longest of d (if ok) and the waits more returns.
func longest(d time.Duration, ok bool, more ...func() (time.Duration, bool)) (time.Duration, bool) {
	for _, f := range more {
		if m, found := f(); found {
			d, ok = max(d, m), true
		}
	}
	return d, ok
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
