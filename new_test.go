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
		{
			name: "nil",
			want: "credpool: invalid key: no keys given",
		},
		{
			name: "empty slice",
			keys: []string{},
			want: "credpool: invalid key: no keys given",
		},
		{
			name: "empty key",
			keys: []string{keyA, ""},
			want: "credpool: key 1 is empty",
		},
		{
			name: "space",
			keys: []string{"sk-test secret-value-123456"},
			want: "credpool: key 0 has a space, control or non-ASCII byte at offset 7",
		},
		{
			name: "CRLF injection",
			keys: []string{keyA, keyB, "sk-test\r\nX-Evil: 1"},
			want: "credpool: key 2 has a space, control or non-ASCII byte at offset 7",
		},
		{
			name: "trailing newline",
			keys: []string{keyA + "\n"},
			want: "credpool: key 0 has a space, control or non-ASCII byte at offset 36",
		},
		{
			name: "tab",
			keys: []string{"\tsk-test-value"},
			want: "credpool: key 0 has a space, control or non-ASCII byte at offset 0",
		},
		{
			name: "NUL",
			keys: []string{"sk-test\x00value"},
			want: "credpool: key 0 has a space, control or non-ASCII byte at offset 7",
		},
		{
			name: "DEL",
			keys: []string{"sk-test\x7fvalue"},
			want: "credpool: key 0 has a space, control or non-ASCII byte at offset 7",
		},
		{
			name: "no-break space",
			keys: []string{"sk-test\u00a0value"},
			want: "credpool: key 0 has a space, control or non-ASCII byte at offset 7",
		},
		{
			name: "ideographic space",
			keys: []string{"sk-test\u3000value"},
			want: "credpool: key 0 has a space, control or non-ASCII byte at offset 7",
		},
		{
			name: "duplicate",
			keys: []string{keyA, keyB, keyA},
			want: "credpool: key 2 duplicates key 0",
		},
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
		{
			name: "nil option",
			want: "nil Option",
		},
		{
			name: "nil base",
			opt:  WithBase(nil),
			want: "WithBase: nil RoundTripper",
		},
		{
			name: "empty header",
			opt:  WithHeader("", "Bearer "),
			want: `WithHeader: "" is not a header name`,
		},
		{
			name: "header with colon",
			opt:  WithHeader("Authorization:", ""),
			want: `WithHeader: "Authorization:" is not a header name`,
		},
		{
			name: "prefix with newline",
			opt:  WithHeader("Authorization", "Bearer\r\n"),
			want: "WithHeader: prefix has control byte 0xd at 6",
		},
		{
			name: "unknown strategy",
			opt:  WithStrategy(Strategy(9)),
			want: "WithStrategy: unknown strategy 9",
		},
		{
			name: "negative retries",
			opt:  WithMaxRetries(-1),
			want: "WithMaxRetries: -1 is negative",
		},
		{
			name: "very negative retries",
			opt:  WithMaxRetries(-3),
			want: "WithMaxRetries: -3 is negative",
		},
		{
			name: "nil backoff",
			opt:  WithBackoff(nil),
			want: "WithBackoff: nil factory",
		},
		{
			name: "negative wait",
			opt:  WithMaxWait(-time.Second),
			want: "WithMaxWait: negative duration -1s",
		},
		{
			name: "cooldown for a retry reason",
			opt:  WithCooldown(ReasonServerError, time.Second),
			want: `WithCooldown: reason "server_error" does not cool a key`,
		},
		{
			name: "cooldown for an unknown reason",
			opt:  WithCooldown(Reason("nope"), time.Second),
			want: `WithCooldown: reason "nope" does not cool a key`,
		},
		{
			name: "zero cooldown",
			opt:  WithCooldown(ReasonRateLimit, 0),
			want: "WithCooldown: 0s is not positive",
		},
		{
			name: "zero max cooldown",
			opt:  WithMaxCooldown(0),
			want: "WithMaxCooldown: 0s is not positive",
		},
		{
			name: "no hosts",
			opt:  WithHosts(),
			want: "WithHosts: no hosts",
		},
		{
			name: "host with path",
			opt:  WithHosts("api.openai.com/v1"),
			want: `WithHosts: "api.openai.com/v1" is not a host`,
		},
		{
			name: "nil logger",
			opt:  WithLogger(nil),
			want: "WithLogger: nil logger",
		},
		{
			name: "negative error body",
			opt:  WithMaxErrorBody(-1),
			want: "WithMaxErrorBody: negative size -1",
		},
		{
			name: "negative replay body",
			opt:  WithMaxReplayBody(-1),
			want: "WithMaxReplayBody: size -1 is not between 0 and 1073741824",
		},
		{
			name: "huge replay body",
			opt:  WithMaxReplayBody(math.MaxInt64),
			want: "WithMaxReplayBody: size 9223372036854775807 is not between 0 and 1073741824",
		},
		{
			name: "negative replay budget",
			opt:  WithReplayBudget(-1),
			want: "WithReplayBudget: negative size -1",
		},
		{
			name: "header name not a token",
			opt:  WithHeader("x api(key)", ""),
			want: `WithHeader: "x api(key)" is not a header name`,
		},
		{
			name: "header name non-ASCII",
			opt:  WithHeader("x-äpi-key", ""),
			want: `WithHeader: "x-äpi-key" is not a header name`,
		},
		{
			name: "header prefix with a control byte",
			opt:  WithHeader("Authorization", "Bearer\x00"),
			want: "WithHeader: prefix has control byte 0x0 at 6",
		},
		{
			name: "header prefix with a line break",
			opt:  WithHeader("Authorization", "Bearer\r\nX: y "),
			want: "WithHeader: prefix has control byte 0xd at 6",
		},
		{
			name: "wildcard in the middle",
			opt:  WithHosts("api.*.com"),
			want: `WithHosts: "api.*.com" has a wildcard other than a leading "*.", which never matches`,
		},
		{
			name: "wildcard without a dot",
			opt:  WithHosts("*openai.com"),
			want: `WithHosts: "*openai.com" has a wildcard other than a leading "*.", which never matches`,
		},
		{
			name: "bare wildcard",
			opt:  WithHosts("*"),
			want: `WithHosts: "*" has a wildcard other than a leading "*.", which never matches`,
		},
		{
			name: "wildcard and nothing",
			opt:  WithHosts("*."),
			want: `WithHosts: "*." is not a host`,
		},
		{
			name: "bad port",
			opt:  WithHosts("api.test:99999"),
			want: `WithHosts: "api.test:99999" has a bad port`,
		},
		{
			name: "empty host",
			opt:  WithHosts(""),
			want: `WithHosts: "" is not a host`,
		},
		{
			name: "scheme in host",
			opt:  WithHosts("https://api.test"),
			want: `WithHosts: "https://api.test" is not a host`,
		},
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
		{key: "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDQ7x9", want: "sk-proj-…Q7x9"},
		{key: "sk-abcdefghijklmnopqrstuvwxyzQ7x9", want: "sk-…Q7x9"},
		{key: "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789-Q7x9", want: "sk-ant-…Q7x9"},
		{key: "ghp_abcdefghijklmnopqrstuvwxyz0123Q7x9", want: "ghp_…Q7x9"},
		{key: "AIzaSyAbcdefghijklmnopqrstuvwxyz012Q7x9", want: "…Q7x9"},
		{key: "0123456789abcdef", want: "…cdef"},
		{key: "short-key", want: "…"},
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
