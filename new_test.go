package credpool

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewRejectsBadKeys(t *testing.T) {
	cases := []struct {
		name string
		keys []string
		want string
	}{
		{"nil", nil, "credpool: invalid key: no keys given"},
		{"empty slice", []string{}, "credpool: invalid key: no keys given"},
		{"empty key", []string{keyA, ""}, "credpool: key 1 is empty"},
		{"space", []string{"sk-test secret-value-123456"}, "credpool: key 0 has a space, control or non-ASCII byte at offset 7"},
		{"CRLF injection", []string{keyA, keyB, "sk-test\r\nX-Evil: 1"}, "credpool: key 2 has a space, control or non-ASCII byte at offset 7"},
		{"trailing newline", []string{keyA + "\n"}, "credpool: key 0 has a space, control or non-ASCII byte at offset 36"},
		{"tab", []string{"\tsk-test-value"}, "credpool: key 0 has a space, control or non-ASCII byte at offset 0"},
		{"NUL", []string{"sk-test\x00value"}, "credpool: key 0 has a space, control or non-ASCII byte at offset 7"},
		{"DEL", []string{"sk-test\x7fvalue"}, "credpool: key 0 has a space, control or non-ASCII byte at offset 7"},
		{"no-break space", []string{"sk-test\u00a0value"}, "credpool: key 0 has a space, control or non-ASCII byte at offset 7"},
		{"ideographic space", []string{"sk-test\u3000value"}, "credpool: key 0 has a space, control or non-ASCII byte at offset 7"},
		{"duplicate", []string{keyA, keyB, keyA}, "credpool: key 2 duplicates key 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := New(tc.keys)
			assert.Nil(t, tr)
			require.EqualError(t, err, tc.want)
			assert.ErrorIs(t, err, ErrInvalidKey)
			for _, k := range tc.keys {
				if len(k) > 4 {
					assert.NotContains(t, err.Error(), k[4:], "the error names the index, never the key")
				}
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name string
		opt  Option
		want string
	}{
		{"nil option", nil, "nil Option"},
		{"nil base", WithBase(nil), "WithBase: nil RoundTripper"},
		{"empty header", WithHeader("", "Bearer "), `WithHeader: "" is not a header name`},
		{"header with colon", WithHeader("Authorization:", ""), `WithHeader: "Authorization:" is not a header name`},
		{"prefix with newline", WithHeader("Authorization", "Bearer\r\n"), "WithHeader: prefix has control byte 0xd at 6"},
		{"unknown strategy", WithStrategy(Strategy(9)), "WithStrategy: unknown strategy 9"},
		{"negative retries", WithMaxRetries(-1), "WithMaxRetries: -1 is negative"},
		{"very negative retries", WithMaxRetries(-3), "WithMaxRetries: -3 is negative"},
		{"nil backoff", WithBackoff(nil), "WithBackoff: nil factory"},
		{"negative wait", WithMaxWait(-time.Second), "WithMaxWait: negative duration -1s"},
		{"cooldown for a retry reason", WithCooldown(ReasonServerError, time.Second), `WithCooldown: reason "server_error" does not cool a key`},
		{"cooldown for an unknown reason", WithCooldown(Reason("nope"), time.Second), `WithCooldown: reason "nope" does not cool a key`},
		{"zero cooldown", WithCooldown(ReasonRateLimit, 0), "WithCooldown: 0s is not positive"},
		{"zero max cooldown", WithMaxCooldown(0), "WithMaxCooldown: 0s is not positive"},
		{"no hosts", WithHosts(), "WithHosts: no hosts"},
		{"host with path", WithHosts("api.openai.com/v1"), `WithHosts: "api.openai.com/v1" is not a host`},
		{"nil logger", WithLogger(nil), "WithLogger: nil logger"},
		{"negative error body", WithMaxErrorBody(-1), "WithMaxErrorBody: negative size -1"},
		{"negative replay body", WithMaxReplayBody(-1), "WithMaxReplayBody: size -1 is not between 0 and 1073741824"},
		{"huge replay body", WithMaxReplayBody(math.MaxInt64), "WithMaxReplayBody: size 9223372036854775807 is not between 0 and 1073741824"},
		{"negative replay budget", WithReplayBudget(-1), "WithReplayBudget: negative size -1"},
		{"header name not a token", WithHeader("x api(key)", ""), `WithHeader: "x api(key)" is not a header name`},
		{"header name non-ASCII", WithHeader("x-äpi-key", ""), `WithHeader: "x-äpi-key" is not a header name`},
		{"header prefix with a control byte", WithHeader("Authorization", "Bearer\x00"), "WithHeader: prefix has control byte 0x0 at 6"},
		{"header prefix with a line break", WithHeader("Authorization", "Bearer\r\nX: y "), "WithHeader: prefix has control byte 0xd at 6"},
		{"wildcard in the middle", WithHosts("api.*.com"), `WithHosts: "api.*.com" has a wildcard other than a leading "*.", which never matches`},
		{"wildcard without a dot", WithHosts("*openai.com"), `WithHosts: "*openai.com" has a wildcard other than a leading "*.", which never matches`},
		{"bare wildcard", WithHosts("*"), `WithHosts: "*" has a wildcard other than a leading "*.", which never matches`},
		{"wildcard and nothing", WithHosts("*."), `WithHosts: "*." is not a host`},
		{"bad port", WithHosts("api.test:99999"), `WithHosts: "api.test:99999" has a bad port`},
		{"empty host", WithHosts(""), `WithHosts: "" is not a host`},
		{"scheme in host", WithHosts("https://api.test"), `WithHosts: "https://api.test" is not a host`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := New([]string{keyA}, tc.opt)
			assert.Nil(t, tr)
			require.EqualError(t, err, "credpool: invalid option: "+tc.want)
			assert.ErrorIs(t, err, ErrInvalidOption)
		})
	}
}

func TestNewReportsFirstBadOption(t *testing.T) {
	_, err := New([]string{keyA}, WithMaxRetries(-1), WithBase(nil))
	assert.EqualError(t, err, "credpool: invalid option: WithMaxRetries: -1 is negative")
}

func TestKeyErrorIsAs(t *testing.T) {
	_, err := New([]string{keyA, ""})
	var ke *KeyError
	require.True(t, errors.As(err, &ke))
	assert.Equal(t, 1, ke.Index)
}

func TestLabels(t *testing.T) {
	cases := []struct {
		key, want string
	}{
		{"sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDQ7x9", "sk-proj-…Q7x9"},
		{"sk-abcdefghijklmnopqrstuvwxyzQ7x9", "sk-…Q7x9"},
		{"sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789-Q7x9", "sk-ant-…Q7x9"},
		{"ghp_abcdefghijklmnopqrstuvwxyz0123Q7x9", "ghp_…Q7x9"},
		{"AIzaSyAbcdefghijklmnopqrstuvwxyz012Q7x9", "…Q7x9"},
		{"0123456789abcdef", "…cdef"},
		{"short-key", "…"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			got := redact(tc.key)
			assert.Equal(t, tc.want, got)
			shown := len(got) - len("…")
			assert.LessOrEqual(t, shown, len(tc.key)/4, "never more than a quarter of the key")
		})
	}
}

func TestLabelsAreUnique(t *testing.T) {
	got := labels([]string{"sk-aaaaaaaaaaaaaaaaaaaaaaaaaaaa1111", "sk-bbbbbbbbbbbbbbbbbbbbbbbbbbbb1111", "sk-cccccccccccccccccccccccccccc2222"})
	assert.Equal(t, []string{"sk-…1111#0", "sk-…1111#1", "sk-…2222"}, got)

	// 101 keys too short to show anything are "…#0" to "…#100"; the last of
	// them must not take the label of a longer key that ends in "#100".
	keys := []string{"abcdefghijkl#100"}
	for i := range 101 {
		keys = append(keys, fmt.Sprintf("short%03d", i))
	}
	got = labels(keys)
	assert.Equal(t, "…#100", got[0])
	assert.Equal(t, "…#100#100", got[100])
	assert.Len(t, slices.Compact(slices.Sorted(slices.Values(got))), len(keys), "every label is unique")
}

func TestStrategyString(t *testing.T) {
	assert.Equal(t, "round_robin", RoundRobin.String())
	assert.Equal(t, "fill_first", FillFirst.String())
	assert.Equal(t, "least_used", LeastUsed.String())
	assert.Equal(t, "random", Random.String())
	assert.Equal(t, "Strategy(7)", Strategy(7).String())
}
