package credpool

import (
	"net/url"
	"reflect"
	"regexp"
	"strings"
)

// A base transport, a Refresher or the network may quote what a request
// carried, its Authorization header among it. Every error credpool returns
// or logs is scrubbed: the secret, as written and URL-escaped, becomes the
// key's label, at every level of the error's chain, so that neither its text
// nor errors.Unwrap nor errors.As can reach the key.

// scrubber returns a Replacer that puts label in place of each secret, as
// written and in its URL-escaped forms. Empty secrets are skipped.
func scrubber(label string, secrets ...string) *strings.Replacer {
	var pairs []string
	seen := map[string]bool{}
	for _, s := range secrets {
		for _, form := range [...]string{s, url.QueryEscape(s), url.PathEscape(s)} {
			if form != "" && !seen[form] {
				seen[form] = true
				pairs = append(pairs, form, label)
			}
		}
	}
	return strings.NewReplacer(pairs...)
}

// scrub returns err with r applied to the text of every error in its chain.
func scrub(err error, r *strings.Replacer) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ Unwrap() []error }); ok {
		return &scrubbedJoin{scrubbed{err: err, r: r}}
	}
	return &scrubbed{err: err, r: r}
}

// scrubbed is one level of a scrubbed chain: its text has no secret in it,
// and what it wraps is scrubbed too. errors.Is sees the original errors;
// errors.As hands out an original only where its text holds no secret, and
// a *url.Error as a scrubbed copy.
type scrubbed struct {
	err error
	r   *strings.Replacer
}

func (e *scrubbed) Error() string { return e.r.Replace(e.err.Error()) }

func (e *scrubbed) Unwrap() error {
	if u, ok := e.err.(interface{ Unwrap() error }); ok {
		return scrub(u.Unwrap(), e.r)
	}
	return nil
}

func (e *scrubbed) Is(target error) bool {
	if reflect.TypeOf(target).Comparable() && e.err == target {
		return true
	}
	is, ok := e.err.(interface{ Is(error) bool })
	return ok && is.Is(target)
}

func (e *scrubbed) As(target any) bool {
	dst := reflect.ValueOf(target)
	if dst.Kind() != reflect.Pointer || dst.IsNil() {
		return false
	}
	var found any = e.err
	if ue, ok := e.err.(*url.Error); ok {
		found = &url.Error{Op: ue.Op, URL: e.r.Replace(ue.URL), Err: scrub(ue.Err, e.r)}
	} else if e.Error() != e.err.Error() {
		return false // its text holds a secret: only the scrubbed text goes out
	}
	if v := reflect.ValueOf(found); v.Type().AssignableTo(dst.Elem().Type()) {
		dst.Elem().Set(v)
		return true
	}
	if as, ok := e.err.(interface{ As(any) bool }); ok && e.Error() == e.err.Error() {
		return as.As(target)
	}
	return false
}

// scrubbedJoin is a scrubbed level that wraps several errors, as
// errors.Join and fmt.Errorf with several %w do.
type scrubbedJoin struct{ scrubbed }

func (e *scrubbedJoin) Unwrap() []error {
	inner := e.err.(interface{ Unwrap() []error }).Unwrap()
	out := make([]error, 0, len(inner))
	for _, err := range inner {
		out = append(out, scrub(err, e.r))
	}
	return out
}

// tokenLike matches what looks like a credential: a long run of the
// characters keys, JWTs and OAuth tokens are written in ("/" left out, so
// that URLs read as they are).
var tokenLike = regexp.MustCompile(`[A-Za-z0-9._~+=-]{24,}`)

// redactTokens hides what looks like a credential in text that credpool did
// not write, such as a Refresher's error, which may quote a refresh token
// credpool never saw. A run counts when it mixes letters and digits, as
// secrets do and words do not.
func redactTokens(s string) string {
	return tokenLike.ReplaceAllStringFunc(s, func(run string) string {
		if strings.ContainsAny(run, "0123456789") && strings.ContainsAny(run, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			return "[redacted]"
		}
		return run
	})
}
