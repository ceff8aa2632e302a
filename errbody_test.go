package credpool

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseErrorShapes pins what the one decode of a body reads from the
// shapes providers disagree on and from hostile ones: a value of the wrong
// type is nothing, not an error that throws the body away.
func TestParseErrorShapes(t *testing.T) {
	cases := []struct {
		name string
		body string
		want errorInfo
	}{
		{"numbers where strings are expected", `{"error":{"code":429,"message":"slow down","type":-1.5e2}}`,
			errorInfo{codes: []string{"429", "-1.5e2"}, message: "slow down"}},
		{"objects, arrays, booleans and null are nothing", `{"error":{"code":{"a":1},"type":[1,["x"]],"status":true,"reason":null,"message":["m"]}}`,
			errorInfo{}},
		{"a flat error string is a message, and a code when it is a token", `{"error":"invalid_grant","error_description":"Bad Request"}`,
			errorInfo{codes: []string{"invalid_grant"}, message: "invalid_grant | bad request"}},
		{"the nested object first, then the top level", `{"message":"outer","error":{"message":"inner","code":"X"}}`,
			errorInfo{codes: []string{"x"}, message: "inner | outer"}},
		{"a repeated error keeps the last", `{"error":{"message":"a","code":"b"},"error":"slow down"}`,
			errorInfo{message: "slow down"}},
		{"a repeated error object does not merge", `{"error":{"message":"a"},"error":{"code":"b"}}`,
			errorInfo{codes: []string{"b"}}},
		{"keys match without case", `{"Error":{"Message":"M","CODE":"C"}}`,
			errorInfo{codes: []string{"c"}, message: "m", bare: "m"}},
		{"escapes are decoded", `{"error":{"message":"\u0041PI key \/ \"x\""}}`,
			errorInfo{message: `api key / "x"`}},
		{"bad UTF-8 is replaced, as the decoder does", "{\"message\":\"a\xffb\"}",
			errorInfo{message: "a\uFFFDb"}},
		{"details with a stranger say nothing", `{"error":{"details":[{"reason":"API_KEY_INVALID"},{"reason":5}]}}`,
			errorInfo{}},
		{"details and metadata of the wrong shape", `{"error":{"details":"not a list","metadata":[1],"message":"m"}}`,
			errorInfo{message: "m", bare: "m"}},
		{"Google's details", `[{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"reason":"R","retryDelay":"47s","violations":[{"quotaId":"PerDay"}],"fieldViolations":[{}]}]}}]`,
			errorInfo{codes: []string{"429", "resource_exhausted", "r"}, field: true, quotaIDs: []string{"PerDay"}, retryDelay: "47s"}},
		{"OpenRouter's metadata", `{"error":{"code":429,"message":"Provider returned error","metadata":{"raw":"upstream","headers":{"X-RateLimit-Reset":1772366460000}}}}`,
			errorInfo{codes: []string{"429"}, message: "provider returned error | upstream", reset: "1772366460000"}},
		{"an error nested deeper is not read", `{"error":{"error":{"message":"deep","code":"invalid_api_key"},"message":"mid"}}`,
			errorInfo{message: "mid", bare: "mid"}},
		{"trailing bytes make it text", `{"error":"x"} and more`,
			errorInfo{message: `{"error":"x"} and more`}},
		{"a list of text is text", `["slow down"]`,
			errorInfo{message: `"slow down"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, parseError([]byte(tc.body)))
		})
	}
}

// TestOneErrorKey: a body that may name "error" twice is not decoded in one
// pass, which would merge the two.
func TestOneErrorKey(t *testing.T) {
	cases := map[string]bool{
		`{"error":{"code":"x"}}`:                         true,
		`{"type":"error","error":{"type":"x"}}`:          true,
		`{"message":"say \"error\": twice","error":{}}`:  true,
		`{"error":{}, "ERROR" :{}}`:                      false,
		`{"error":{"error":{"code":"x"}}}`:               false,
		`{"err\u006fr":{"message":"a"},"error":{"x":1}}`: false,
		`{"message":"\u00e9","error":{"code":"x"}}`:      false,
	}
	for body, want := range cases {
		assert.Equal(t, want, oneErrorKey([]byte(body)), body)
	}
}

// TestErrorKeySpelling: no character outside ASCII folds to a letter of
// "error", so the key's ASCII spellings, which oneErrorKey looks for, are
// all the spellings the decoder takes for it without an escape.
func TestErrorKeySpelling(t *testing.T) {
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		folds := []rune{unicode.ToUpper(unicode.ToLower(r))} // the decoder's folding
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			folds = append(folds, f)
		}
		for _, f := range folds {
			if strings.ContainsRune("eroERO", f) {
				t.Fatalf("%U folds to %q", r, f)
			}
		}
	}
}

// TestParseErrorDeepNesting: a body nested thousands deep is read once, the
// levels past the second skipped, not decoded again at every level.
func TestParseErrorDeepNesting(t *testing.T) {
	const depth = 5000
	body := strings.Repeat(`{"error":`, depth) + `"x"` + strings.Repeat("}", depth)
	info := parseError([]byte(body))
	assert.Empty(t, info.message)
	assert.Empty(t, info.codes)
}

// TestParseErrorAllocs: OpenAI's 429 is decoded in one pass, and the fields
// it lacks cost nothing. Its strings and the decoder's state take 14
// allocations; decoding every field raw, then each again, took 40.
func TestParseErrorAllocs(t *testing.T) {
	body := classifyCases[0].body
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() { parseError(body) }), 20.0)
}

// TestDefaultLoggerDiscards: without WithLogger nobody listens, so no level
// is enabled and a log call formats nothing.
func TestDefaultLoggerDiscards(t *testing.T) {
	tr, err := New([]string{keyA})
	require.NoError(t, err)
	h := tr.cfg.logger.Handler()
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		assert.False(t, h.Enabled(context.Background(), l), "level %v", l)
	}
	assert.False(t, h.WithAttrs([]slog.Attr{slog.String("a", "b")}).WithGroup("g").Enabled(context.Background(), slog.LevelError))
	assert.NoError(t, h.Handle(context.Background(), slog.Record{}))
}
