package credpool

import (
	"strings"
)

// Rule is a classification of your own, for a provider or gateway whose
// errors the built-in tables do not know. A rule matches an error response
// when every field it sets matches; rules added with WithRule are tried in
// order, before the built-in tables.
type Rule struct {
	Status int    // the HTTP status; 0 matches any error status
	Code   string // equal, ignoring case, to one of the body's code, type, status or reason fields
	Phrase string // contained, ignoring case, in the body's message (or its text, if not JSON), outside quotes
	Reason Reason // the verdict: what happens to the key and the request
}

// matches reports whether the rule matches an error response. WithRule has
// lower-cased its Code and Phrase. A phrase is looked for outside quoted
// spans, as the built-in phrases are, and not where the caller's request
// carries it: a rule that kills on a phrase must not kill on a caller's
// words quoted back.
func (r *Rule) matches(e *evidence) bool {
	return (r.Status == 0 || r.Status == e.status) &&
		(r.Code == "" || e.info.hasCode(r.Code)) &&
		(r.Phrase == "" || strings.Contains(e.read().text, r.Phrase) &&
			(e.echoed == nil || !e.echoed(words(r.Phrase))))
}

// WithRule adds a classification rule, tried before the built-in ones. For
// example, a gateway that reports a revoked key as 400 "key disabled":
//
//	credpool.WithRule(credpool.Rule{Status: 400, Phrase: "key disabled", Reason: credpool.ReasonAuthPermanent})
//
// A rule must set at least one of Status, Code and Phrase, and a Reason other
// than ReasonTransport, which only network errors have.
func WithRule(r Rule) Option {
	return optionFunc(func(c *config) {
		switch {
		case r.Status == 0 && r.Code == "" && r.Phrase == "":
			c.invalid("WithRule: a rule must set Status, Code or Phrase")
		case r.Status != 0 && (r.Status < 400 || r.Status > 599):
			c.invalid("WithRule: status %d is not an error status", r.Status)
		case r.Reason == ReasonTransport || !knownReason(r.Reason):
			c.invalid("WithRule: reason %q cannot be a response's verdict", r.Reason)
		default:
			r.Code, r.Phrase = strings.ToLower(r.Code), strings.ToLower(r.Phrase)
			c.classifier.rules = append(c.classifier.rules, r)
		}
	})
}

func knownReason(r Reason) bool { return reasonSlot(r) >= 0 }
