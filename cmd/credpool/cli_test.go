// cli_test.go tests the command line: help and usage errors with their exit
// statuses, check against a fake provider, the demo, and the proxy command
// run whole, from its flags to its shutdown.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCLI runs the command line args and returns the exit status and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpAndUsageErrors(t *testing.T) {
	code, out, _ := runCLI(t, "help")
	assert.Equal(t, exitOK, code)
	for _, c := range []string{"proxy", "check", "demo"} {
		assert.Contains(t, out, c)
	}
	code, out, _ = runCLI(t, "help", "proxy")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "-upstream")
	code, out, _ = runCLI(t, "check", "-h")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "-base-url")

	code, _, errOut := runCLI(t)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "Usage:")
	code, _, errOut = runCLI(t, "serve")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, `unknown command "serve"`)
	code, _, errOut = runCLI(t, "proxy", "--nope")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "flag provided but not defined: -nope")
	assert.Contains(t, errOut, "credpool help proxy")
	code, _, errOut = runCLI(t, "proxy", "--upstream", "http://127.0.0.1:9", "--preset", "acme")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "anthropic, azure, deepseek, gemini, github, groq, mistral, openai, openrouter, xai")
	code, _, errOut = runCLI(t, "proxy", "--upstream")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "flag needs an argument")
	code, _, errOut = runCLI(t, "demo", "-n", "0")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "-n and -c must be at least 1")
}

func TestKeysNeverFromArgv(t *testing.T) {
	code, _, errOut := runCLI(t, "proxy", "--upstream", "http://127.0.0.1:9", fakeapi.GoodKey)
	assert.Equal(t, exitUsage, code)
	assert.NotContains(t, errOut, fakeapi.GoodKey, "a key pasted on the command line is not echoed")
	assert.Contains(t, errOut, "--keys-file or --keys-env")

	t.Setenv("TEST_NO_KEYS", "")
	code, _, errOut = runCLI(t, "check", "--base-url", "http://127.0.0.1:9", "--keys-env", "TEST_NO_KEYS")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, errOut, "TEST_NO_KEYS holds no keys")
	assert.Contains(t, errOut, "--keys-file", "names the other source")
	code, _, errOut = runCLI(t, "check", "--base-url", "http://127.0.0.1:9", "--keys-env", "X", "--keys-file", "/nonexistent")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "exclusive")
}

func TestProxyRefusesToStartOpen(t *testing.T) {
	t.Setenv("CREDPOOL_CLIENT_TOKEN", "")
	t.Setenv("CREDPOOL_KEYS", fakeapi.GoodKey)
	code, _, errOut := runCLI(t, "proxy", "--upstream", "http://127.0.0.1:9", "--listen", "0.0.0.0:0")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "not a loopback address")

	code, _, errOut = runCLI(t, "proxy", "--upstream", "http://127.0.0.1:9", "--listen", "127.0.0.1:99999")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, `credpool proxy: --listen "127.0.0.1:99999": port 99999 is out of range (0 to 65535)`)
}

func TestCheck(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	t.Setenv("TEST_CHECK_KEYS", strings.Join([]string{fakeapi.GoodKey, fakeapi.RevokedKey, fakeapi.LimitedKey}, "\n"))
	code, out, errOut := runCLI(t, "check", "--preset", "openai", "--base-url", up.URL, "--keys-env", "TEST_CHECK_KEYS")
	t.Log("\n" + out)
	assert.Equal(t, exitFail, code, "not every key is ok: %s", errOut)
	lines := strings.Split(out, "\n")
	assert.Regexp(t, `^LABEL\s+STATUS\s+STATE\s+REASON\s+RESET IN$`, lines[0])
	assert.Regexp(t, `^sk-…GOOD\s+200\s+ok\s+-\s+-$`, lines[1])
	assert.Regexp(t, `^sk-…REVK\s+401\s+dead\s+auth_permanent\s+-$`, lines[2])
	assert.Regexp(t, `^sk-…LIMT\s+429\s+exhausted\s+rate_limit\s+(9m5\d|10m0)s$`, lines[3])
	assert.Contains(t, out, "1 of 3 keys ok, 1 exhausted, 1 dead, 0 failed otherwise.")
	for _, k := range []string{fakeapi.GoodKey, fakeapi.RevokedKey, fakeapi.LimitedKey} {
		assert.NotContains(t, out+errOut, k)
	}
	for _, r := range up.Requests() {
		assert.Equal(t, "/v1/models", r.Path)
	}
	assert.Len(t, up.Requests(), 3, "one request per key, no retry")

	file := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(file, []byte("# alive ones\n"+fakeapi.GoodKey+"\n"+fakeapi.Good2Key+"\n"), 0o600))
	code, out, errOut = runCLI(t, "check", "--base-url", up.URL, "--keys-file", file, "--path", "/v1/chat/completions")
	assert.Equal(t, exitOK, code, "every key is ok: %s%s", out, errOut)
	assert.Contains(t, out, "2 of 2 keys ok")
}

// TestPrintCheckCountsEveryState: the summary counts each state, a
// disabled key as disabled, not as failed otherwise, and names the disabled
// count only when there is one.
func TestPrintCheckCountsEveryState(t *testing.T) {
	cases := []struct {
		name    string
		results []checkResult
		want    string
		allOK   bool
	}{
		{name: "every key ok", results: []checkResult{
			{label: "sk-…AAAA", status: 200, state: credpool.StateOK},
		}, want: "1 of 1 key ok, 0 exhausted, 0 dead, 0 failed otherwise.", allOK: true},
		{name: "one of each", results: []checkResult{
			{label: "sk-…AAAA", status: 200, state: credpool.StateOK},
			{label: "sk-…BBBB", status: 429, state: credpool.StateExhausted, reason: credpool.ReasonRateLimit},
			{label: "sk-…CCCC", status: 401, state: credpool.StateDead, reason: credpool.ReasonAuthPermanent},
			{label: "sk-…DDDD", state: credpool.StateDisabled, err: &credpool.NoKeysError{Disabled: 1}},
			{label: "sk-…EEEE", status: 404, state: credpool.StateOK},
		}, want: "1 of 5 keys ok, 1 exhausted, 1 dead, 1 disabled, 1 failed otherwise."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			assert.Equal(t, tc.allOK, printCheck(&out, tc.results))
			assert.Contains(t, out.String(), "\n"+tc.want+"\n")
			assert.Regexp(t, `(?m)^sk-…AAAA\s+200\s+ok\s+-\s+-$`, out.String())
		})
	}
}

func TestCheckReportsUnreachable(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	url := up.URL
	up.Close()
	t.Setenv("TEST_CHECK_KEYS", fakeapi.GoodKey)
	code, out, _ := runCLI(t, "check", "--base-url", url, "--keys-env", "TEST_CHECK_KEYS", "--timeout", "5s")
	assert.Equal(t, exitFail, code)
	assert.Regexp(t, `sk-…GOOD\s+error\s+ok`, out)
	assert.Contains(t, out, "0 of 1 key ok")
	assert.NotContains(t, out, fakeapi.GoodKey)
}

// TestDemo runs the demo command whole, in both modes; the demos' own
// tests are in internal/demo.
func TestDemo(t *testing.T) {
	report := filepath.Join(t.TempDir(), "day.html")
	code, out, errOut := runCLI(t, "demo", "--html", report)
	require.Equal(t, exitOK, code, "%s\n%s", out, errOut)
	assert.Regexp(t, `(?m)^  Requests that failed +\d+ +\d+$`, out)
	assert.Contains(t, out, "OK: credpool failed")
	assert.NotContains(t, out, "\033[", "no colour off a terminal")
	page, err := os.ReadFile(report)
	require.NoError(t, err)
	assert.Contains(t, string(page), "<svg")

	code, out, errOut = runCLI(t, "demo", "--live", "-n", "60", "-c", "8")
	require.Equal(t, exitOK, code, "%s\n%s", out, errOut)
	assert.Contains(t, out, "OK: revoked key sk-…REVK is dead")
	assert.Contains(t, errOut, "progress: 60/60 done")
	assert.NotContains(t, out+errOut+string(page), "sk-demo1-fake-key", "no key is printed")

	for _, args := range [][]string{{"-n", "5"}, {"--live", "--html", report}, {"--live", "--seed", "2"}} {
		code, _, errOut = runCLI(t, append([]string{"demo"}, args...)...)
		assert.Equal(t, exitUsage, code, "%v", args)
		assert.Contains(t, errOut, "credpool help demo")
	}
}

// TestProxyCommand runs the proxy command whole: from its flags and the
// environment to a request through it, with a state file as its store, and
// a graceful stop.
func TestProxyCommand(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	state := filepath.Join(t.TempDir(), "credpool.json")
	t.Setenv("TEST_PROXY_KEYS", fakeapi.RevokedKey+","+fakeapi.GoodKey)
	t.Setenv("TEST_PROXY_TOKEN", fakeapi.Token)

	ctx, stop := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"proxy", "--upstream", up.URL, "--preset", "openai", "--listen", "127.0.0.1:0",
			"--keys-env", "TEST_PROXY_KEYS", "--client-token-env", "TEST_PROXY_TOKEN", "--store", state}, &stdout, &stderr)
	}()
	listening := regexp.MustCompile(`listen=(http://127\.0\.0\.1:\d+)`)
	var base string
	require.Eventually(t, func() bool {
		m := listening.FindStringSubmatch(stderr.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "the proxy says where it listens: %s", stderr.String())

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, base+"/v1/models", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+fakeapi.Token)
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// The death reaches the state file, by fingerprint, never by key.
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(state)
		if err != nil {
			return false
		}
		var f struct {
			Records map[string]credpool.Record `json:"records"`
		}
		return json.Unmarshal(data, &f) == nil && f.Records[credpool.Fingerprint([]byte("credpool/v1"), fakeapi.RevokedKey)].State == credpool.StateDead
	}, 5*time.Second, 20*time.Millisecond)
	data, err := os.ReadFile(state)
	require.NoError(t, err)
	assert.NotContains(t, string(data), fakeapi.RevokedKey)

	stop() // SIGINT
	select {
	case code := <-exited:
		assert.Equal(t, exitOK, code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not stop")
	}
	logs := stderr.String()
	assert.Contains(t, logs, "credpool proxy: stopped")
	assert.Contains(t, logs, "key=sk-…REVK", "state changes are logged by label")
	for _, secret := range []string{fakeapi.RevokedKey, fakeapi.GoodKey, fakeapi.Token} {
		assert.NotContains(t, logs+stdout.String(), secret)
	}
}

func TestOpenStore(t *testing.T) {
	s, closer, err := openStore(filepath.Join(t.TempDir(), "state.json"), fakeapi.DiscardLogger())
	require.NoError(t, err)
	assert.IsType(t, &credpool.FileStore{}, s)
	require.NoError(t, closer.Close())

	_, _, err = openStore("redis://user:hunter2-secret@127.0.0.1:notaport/0", fakeapi.DiscardLogger())
	var usage *usageError
	require.ErrorAs(t, err, &usage)
	assert.NotContains(t, err.Error(), "hunter2-secret", "a Redis password is not echoed")

	// A Redis that does not answer is logged, not refused: the pool works on
	// local state until it does. Port 1 on loopback refuses at once.
	var logs syncBuffer
	s, closer, err = openStore("redis://:hunter2-secret@127.0.0.1:1/2?max_retries=-1", textLogger(&logs))
	require.NoError(t, err)
	assert.NotNil(t, s)
	require.NoError(t, closer.Close())
	assert.Contains(t, logs.String(), "does not answer yet")
	assert.NotContains(t, logs.String(), "hunter2-secret")
	assert.Equal(t, "redis 127.0.0.1:1 db 2", storeName("redis://:hunter2-secret@127.0.0.1:1/2"))
}
