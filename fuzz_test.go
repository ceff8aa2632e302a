package credpool

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The fuzz targets check what must hold for any input, however hostile: no
// panic, no negative or unbounded wait, no verdict outside the known set, no
// key in an error. `go test -fuzz FuzzX` explores; the seeds, taken from the
// provider fixtures, run with every `go test`.

func FuzzParseError(f *testing.F) {
	for _, c := range fixtureCases(f) {
		f.Add([]byte(c.Body))
	}
	f.Add([]byte(`{"error":{"details":"not a list","metadata":[1]}}`))
	f.Add([]byte(strings.Repeat(`{"error":`, 5000)))
	f.Fuzz(func(t *testing.T, body []byte) {
		info := parseError(body)
		for _, c := range info.codes {
			if c != strings.ToLower(c) {
				t.Fatalf("code %q is not lower case", c)
			}
		}
		if len(info.message) > 4*len(body)+16 {
			t.Fatalf("message of %d bytes from a body of %d", len(info.message), len(body))
		}
	})
}

func FuzzParseReset(f *testing.F) {
	for _, s := range []string{"6m0s", "20ms", "2.5s", "55", "1772366460", "1772366460000", "2026-03-01T12:00:30Z",
		"Sun, 01 Mar 2026 12:01:00 GMT", "NaN", "-1", "1e30", "9999-12-31T23:59:59Z", "0x10", "1_000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d, ok := parseReset(v, testNow); d < 0 || (!ok && d != 0) {
			t.Fatalf("parseReset(%q) = %v, %v", v, d, ok)
		}
	})
}

func FuzzRetryAfter(f *testing.F) {
	f.Add("", "7")
	f.Add("1500", "")
	f.Add("", "Sun, 01 Mar 2026 12:00:10 GMT")
	f.Add("NaN", "-Inf")
	f.Add("1e308", "1e308")
	f.Fuzz(func(t *testing.T, ms, seconds string) {
		h := http.Header{"Retry-After-Ms": {ms}, "Retry-After": {seconds}}
		if d, ok := retryAfter(h, testNow); d < 0 || (!ok && d != 0) {
			t.Fatalf("retryAfter(%q, %q) = %v, %v", ms, seconds, d, ok)
		}
	})
}

func FuzzMessageHints(f *testing.F) {
	for _, c := range fixtureCases(f) {
		f.Add(strings.ToLower(c.Body))
	}
	f.Add("try again in 99999999999999999999h")
	f.Add("regain access on 2026-13-45 at 99:99 utc")
	f.Add("replenished in 999999999999:59:59")
	f.Add("replenished in 99999999999999.23:59:59")
	f.Fuzz(func(t *testing.T, msg string) {
		p := readProse(msg)
		if d, ok := proseWait(&p, testNow, nil); d < 0 || (!ok && d != 0) {
			t.Fatalf("proseWait(%q) = %v, %v", msg, d, ok)
		}
	})
}

// FuzzClassify runs the whole classifier and the cooldown arithmetic the
// transport applies to its verdict.
func FuzzClassify(f *testing.F) {
	for _, c := range fixtureCases(f) {
		var names, values []string
		for k, v := range c.Headers {
			names, values = append(names, k), append(values, v)
		}
		f.Add(c.Status, strings.Join(names, "\n"), strings.Join(values, "\n"), []byte(c.Body))
	}
	const maxCooldown = 24 * time.Hour
	f.Fuzz(func(t *testing.T, status int, names, values string, body []byte) {
		if status < 400 || status > 599 {
			return // the transport classifies error statuses only
		}
		h := http.Header{}
		vs := strings.Split(values, "\n")
		for i, name := range strings.Split(names, "\n") {
			if i < len(vs) {
				h.Set(name, vs[i])
			}
		}
		v := defaultClassifier.classify(status, h, body, testNow, nil)
		if !knownReason(v.reason) || v.reason == ReasonTransport {
			t.Fatalf("verdict %q", v.reason)
		}
		if v.hint < 0 || (!v.hinted && v.hint != 0) {
			t.Fatalf("hint %v, hinted %v", v.hint, v.hinted)
		}
		if c := clamp(v.hint, maxCooldown); c < 0 || c > maxCooldown {
			t.Fatalf("cooldown %v outside [0, %v]", c, maxCooldown)
		}
		if v.final && v.reason != ReasonAuthPermanent {
			t.Fatalf("final verdict %q", v.reason)
		}
	})
}

func FuzzValidateKeys(f *testing.F) {
	for _, k := range []string{keyA, "", " ", "sk-test\r\nX: 1", "sk\u00a0x", "\x00", "ghp_" + strings.Repeat("x", 36)} {
		f.Add(k, keyB)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		err := validateKeys([]string{a, b})
		if err == nil {
			for _, k := range []string{a, b} {
				if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
					t.Fatalf("accepted %q", k)
				}
			}
			if l := redact(a); utf8.RuneCountInString(l)-1 > len(a)/4 {
				t.Fatalf("label %q shows more than a quarter of a %d-byte key", l, len(a))
			}
			return
		}
		for _, k := range []string{a, b} {
			if len(k) >= 8 && strings.Contains(err.Error(), k) {
				t.Fatalf("error %q contains the key", err)
			}
		}
	})
}

// FuzzReflectedValidationError: whatever string a caller sends, a provider
// quoting it back in a validation error never costs a key on the provider's
// authority. Where the error carries a code that blames the request, no key
// pays at all; elsewhere a key may pay only on words (v.prose), which costs
// one key per request at most, and only words the caller did not send.
func FuzzReflectedValidationError(f *testing.F) {
	for _, s := range hostileInputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		quoted, _ := json.Marshal(s)
		said := words(strings.ToLower(s))
		echoed := func(p string) bool { return containsPhrase(said, p) }
		for _, ref := range reflections {
			body := fmt.Sprintf(ref.body, string(quoted[1:len(quoted)-1]))
			for _, echo := range []func(string) bool{echoed, nil} {
				v := defaultClassifier.classify(ref.status, http.Header{}, []byte(body), testNow, echo)
				if v.final {
					t.Fatalf("%s: %q is final", ref.name, s)
				}
				costs := v.reason == ReasonAuthPermanent || v.reason == ReasonAuth ||
					v.reason == ReasonBilling || v.reason == ReasonRateLimit
				if costs && !v.prose {
					t.Fatalf("%s: %q costs a key (%s) on the provider's authority", ref.name, s, v.reason)
				}
				if strings.Contains(body, `"code":"invalid_value"`) || strings.Contains(body, `"code":"model_not_found"`) {
					if v.reason != ReasonClientError {
						t.Fatalf("%s: %q gives %s despite the request's code", ref.name, s, v.reason)
					}
				}
			}
		}
	})
}

// FuzzProseShortcuts checks that the shortcuts which keep the expressions, the
// phrase searches and the echo off the error path change no answer: a text
// that hasDate or timeSpanAt turns away has no match, a phrase that the word
// set turns away is not in the words, and a wait already known asks the echo
// only about longer ones, with the answer longest would give.
func FuzzProseShortcuts(f *testing.F) {
	for _, s := range []string{"resets at 2026-03-02t00:00:00z", "regain access on 2026-04-01 at 00:00 utc",
		"2.04:22:11", "00:01:09", "1.2.3:45:67", "12:34", "try again in 20s, tomorrow", "-2026-1-01", "9999-99-99"} {
		f.Add(s, int64(25*time.Second))
	}
	f.Fuzz(func(t *testing.T, msg string, known int64) {
		if !hasDate(msg) && dateInProse.MatchString(msg) {
			t.Fatalf("hasDate(%q) is false, but the expression matches", msg)
		}
		if got, want := timeSpanAt(msg), timeSpan.FindStringSubmatch(msg); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("timeSpanAt(%q) = %q, the expression %q", msg, got, want)
		}
		p := readProse(msg)
		for _, ph := range append(phrases(msg, strings.TrimSpace(p.words)), billing.phrases...) {
			if p.has(ph) != containsPhrase(p.words, ph) {
				t.Fatalf("has(%q) in %q is %v", ph, p.words, p.has(ph))
			}
		}
		echoed := func(phrase string) bool { return len(phrase)%2 == 0 }
		for _, ok := range []bool{false, true} {
			d := time.Duration(max(known, 0))
			gotD, gotOK := proseWaitOver(&p, testNow, echoed, d, ok)
			wantD, wantOK := longest(d, ok, func() (time.Duration, bool) { return proseWait(&p, testNow, echoed) })
			if gotD != wantD || gotOK != wantOK {
				t.Fatalf("proseWaitOver(%q, %v, %v) = %v, %v; longest gives %v, %v", msg, d, ok, gotD, gotOK, wantD, wantOK)
			}
		}
	})
}
