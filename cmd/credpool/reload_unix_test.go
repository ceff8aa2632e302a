//go:build unix

// reload_unix_test.go runs the proxy command whole and sends the test
// process a real SIGHUP: with --keys-file it reloads the keys, with
// --keys-env it says it cannot, and in both cases it goes on serving.

package main

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runProxyCommand runs the proxy command with args until the test ends,
// and returns its address and its logs once it says it serves: SIGHUP is
// heard from then on.
func runProxyCommand(t *testing.T, args ...string) (base string, logs *syncBuffer) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	logs = new(syncBuffer)
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, append([]string{"proxy", "--preset", "openai", "--listen", "127.0.0.1:0"}, args...), new(syncBuffer), logs)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case code := <-exited:
			assert.Equal(t, exitOK, code, logs.String())
		case <-time.After(10 * time.Second):
			t.Error("the proxy did not stop")
		}
		for _, k := range allKeys {
			assert.NotContains(t, logs.String(), k, "a log shows a key")
		}
	})
	listening := regexp.MustCompile(`msg="credpool proxy: serving" listen=(http://127\.0\.0\.1:\d+)`)
	require.Eventually(t, func() bool {
		m := listening.FindStringSubmatch(logs.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}, 10*time.Second, time.Millisecond, "the proxy says where it listens: %s", logs.String())
	return base, logs
}

// hangUp sends the test process SIGHUP.
func hangUp(t *testing.T) {
	t.Helper()
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGHUP))
}

// getKey sends GET /v1/models and returns the label of the key that served
// it.
func getKey(t *testing.T, base string) string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(base + "/v1/models")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return resp.Header.Get("Credpool-Key")
}

// TestProxyCommandReloadsOnSIGHUP: the proxy command, given --keys-file,
// reloads it on SIGHUP. The poll is put off for the test, so that only the
// signal can have done it.
func TestProxyCommandReloadsOnSIGHUP(t *testing.T) {
	defer func(every time.Duration) { keysPollEvery = every }(keysPollEvery)
	keysPollEvery = time.Hour
	up := fakeapi.NewUpstream(t)
	file := filepath.Join(t.TempDir(), "keys")
	writeKeys(t, file, fakeapi.GoodKey)
	base, logs := runProxyCommand(t, "--upstream", up.URL, "--keys-file", file)
	assert.Contains(t, logs.String(), "keys_file="+file+" keys_poll=1h0m0s")
	assert.Equal(t, "sk-…GOOD", getKey(t, base))

	writeKeys(t, file, fakeapi.Good2Key)
	hangUp(t)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), logReloaded) }, 10*time.Second, time.Millisecond)
	assert.Contains(t, logs.String(), logReplaced+" keys=1 added=[sk-…GD02] removed=[sk-…GOOD]")
	assert.Contains(t, logs.String(), logReloaded+" trigger=SIGHUP file="+file+" keys=1")
	assert.Equal(t, "sk-…GD02", getKey(t, base))
}

// TestProxyCommandSIGHUPWithKeysEnv: with --keys-env, SIGHUP is logged as
// nothing to reload, and the proxy goes on serving.
func TestProxyCommandSIGHUPWithKeysEnv(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	t.Setenv("TEST_HUP_KEYS", fakeapi.GoodKey)
	base, logs := runProxyCommand(t, "--upstream", up.URL, "--keys-env", "TEST_HUP_KEYS")
	assert.NotContains(t, logs.String(), "keys_poll")
	hangUp(t)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "SIGHUP: the keys come from the environment") },
		10*time.Second, time.Millisecond)
	assert.Contains(t, logs.String(), "keys_env=TEST_HUP_KEYS")
	assert.Equal(t, "sk-…GOOD", getKey(t, base))
}
