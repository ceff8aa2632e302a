// reload_test.go tests the reload of --keys-file in a running proxy: a
// rewrite takes effect, keeping a dead key dead; SIGHUP reloads; a bad file
// and a count the per-key flags no longer fit are refused, and the running
// keys stay; --keys-env answers SIGHUP with a log line. It also tests
// --key-limits, from its parsing to the pool. The polls and signals are the
// test's, sent when it chooses: nothing waits on a clock.

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/credpool/credpool/cmd/credpool/internal/proxy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The messages of the reloads, as the logs show them.
const (
	logReplaced  = `msg="credpool: keys replaced"`
	logReloaded  = `msg="credpool proxy: keys reloaded"`
	logUnchanged = `msg="credpool proxy: keys unchanged"`
	logRefused   = `msg="credpool proxy: keys not reloaded; the running keys stay"`
)

// allKeys are every made-up key: none may appear in a log.
var allKeys = []string{fakeapi.GoodKey, fakeapi.Good2Key, fakeapi.RevokedKey, fakeapi.LimitedKey}

// reloadProxy is a proxy made as the proxy command makes it from its flags
// and --keys-file, served on loopback, with the reloader the command would
// run; the test calls its poll and hangup itself.
type reloadProxy struct {
	up   *fakeapi.Upstream
	file string
	url  string
	r    *keyReloader
	logs *syncBuffer
}

// newReloadProxy writes keys to a file and starts a proxy over it with the
// flags args.
func newReloadProxy(t *testing.T, keys []string, args ...string) *reloadProxy {
	t.Helper()
	up := fakeapi.NewUpstream(t)
	file := filepath.Join(t.TempDir(), "keys")
	writeKeys(t, file, keys...)
	fs, o := proxyFlags()
	require.NoError(t, parse(fs, append([]string{"--upstream", up.URL, "--preset", "openai", "--keys-file", file}, args...)))
	cfg, err := o.config("")
	require.NoError(t, err)
	loaded, err := o.keys.load(fs)
	require.NoError(t, err)
	logs := new(syncBuffer)
	cfg.Log = textLogger(logs)
	p, err := proxy.New(cfg, loaded)
	require.NoError(t, err)
	r, err := o.reloader(p, loaded, cfg.Log)
	require.NoError(t, err)
	srv := httptest.NewServer(p)
	t.Cleanup(func() {
		srv.Close()
		p.Close()
		for _, k := range allKeys {
			assert.NotContains(t, logs.String(), k, "a log shows a key")
		}
	})
	return &reloadProxy{up: up, file: file, url: srv.URL, r: r, logs: logs}
}

// writeKeys writes keys to file, one a line, under a comment.
func writeKeys(t *testing.T, file string, keys ...string) {
	t.Helper()
	require.NoError(t, os.WriteFile(file, []byte("# the pool's keys\n"+strings.Join(keys, "\n")+"\n"), 0o600))
}

// get sends GET path and returns the status and the label of the key that
// served it.
func (p *reloadProxy) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(p.url + path)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(proxy.KeyHeader)
}

// states returns "label state" of every key, from /credpool/status.
func (p *reloadProxy) states(t *testing.T) []string {
	t.Helper()
	resp, err := http.Get(p.url + "/credpool/status")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var st struct {
		Keys []struct{ Label, State string }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	var out []string
	for _, k := range st.Keys {
		out = append(out, k.Label+" "+k.State)
	}
	return out
}

// sentWith returns the keys the upstream got, from request from on.
func sentWith(up *fakeapi.Upstream, from int) []string {
	var out []string
	for _, r := range up.Requests()[from:] {
		out = append(out, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}
	return out
}

// TestReloadFileRewrite rewrites the keys file under a running proxy: one
// key added, one removed, and one kept that is dead. The removed key is
// never sent again, the added one serves, the dead one stays dead, and the
// log names them by label.
func TestReloadFileRewrite(t *testing.T) {
	p := newReloadProxy(t, []string{fakeapi.RevokedKey, fakeapi.GoodKey})
	code, label := p.get(t, "/v1/models")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "sk-…GOOD", label)
	require.Equal(t, []string{"sk-…REVK dead", "sk-…GOOD ok"}, p.states(t))

	p.r.settledPoll()
	assert.NotContains(t, p.logs.String(), "credpool proxy: keys", "a poll of an unchanged file says nothing")

	writeKeys(t, p.file, fakeapi.RevokedKey, fakeapi.Good2Key)
	p.r.settledPoll()
	logs := p.logs.String()
	assert.Contains(t, logs, logReplaced+" keys=2 added=[sk-…GD02] removed=[sk-…GOOD]")
	assert.Contains(t, logs, logReloaded+" trigger=file_change file="+p.file+" keys=2")
	assert.Equal(t, []string{"sk-…REVK dead", "sk-…GD02 ok"}, p.states(t), "the dead key stays dead")

	from := len(p.up.Requests())
	for range 4 {
		code, label := p.get(t, "/v1/models")
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, "sk-…GD02", label, "the added key serves")
	}
	assert.Equal(t, []string{fakeapi.Good2Key, fakeapi.Good2Key, fakeapi.Good2Key, fakeapi.Good2Key}, sentWith(p.up, from),
		"neither the removed key nor the dead one is sent")

	p.r.settledPoll()
	assert.Equal(t, 1, strings.Count(p.logs.String(), logReloaded), "a poll after the reload says nothing")
}

// TestReloadOnSignal: SIGHUP, sent to the reloader's signal channel while
// it runs, reloads the file; with nothing changed, it says so.
func TestReloadOnSignal(t *testing.T) {
	p := newReloadProxy(t, []string{fakeapi.GoodKey})
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.r.run(ctx, nil, hup) // no ticks: only the signal reloads
	}()
	defer func() {
		cancel()
		<-done
	}()

	writeKeys(t, p.file, fakeapi.GoodKey, fakeapi.Good2Key)
	hup <- syscall.SIGHUP
	hup <- syscall.SIGHUP // taken once the first is handled
	require.Eventually(t, func() bool { return strings.Contains(p.logs.String(), logUnchanged) }, 5*time.Second, time.Millisecond)
	logs := p.logs.String()
	assert.Contains(t, logs, logReplaced+" keys=2 added=[sk-…GD02] removed=[]")
	assert.Contains(t, logs, logReloaded+" trigger=SIGHUP file="+p.file+" keys=2")
	assert.Contains(t, logs, logUnchanged+" trigger=SIGHUP file="+p.file+" keys=2")
	assert.Equal(t, []string{"sk-…GOOD ok", "sk-…GD02 ok"}, p.states(t))
}

// TestReloadRefusesBadFile: a file that cannot be read, holds no key or a
// bad one is refused with a log line that says why (by line, never by key),
// once however many polls see it; SIGHUP says it again. The running keys
// stay, and serve, until the file is good again.
func TestReloadRefusesBadFile(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(t *testing.T, file string)
		why   string
	}{
		{"empty", func(t *testing.T, file string) { require.NoError(t, os.WriteFile(file, nil, 0o600)) }, "holds no keys"},
		{"only comments", func(t *testing.T, file string) {
			require.NoError(t, os.WriteFile(file, []byte("# none yet\n\n"), 0o600))
		}, "holds no keys"},
		{"a key with a space", func(t *testing.T, file string) {
			writeKeys(t, file, fakeapi.GoodKey, "sk-test-has a-space-000000000-SPCE")
		}, "line 3: the key has a space, control or non-ASCII byte at offset 11"},
		{"a key twice", func(t *testing.T, file string) {
			writeKeys(t, file, fakeapi.GoodKey, fakeapi.Good2Key, fakeapi.GoodKey)
		}, "line 4: the key repeats the key on line 2"},
		{"gone", func(t *testing.T, file string) { require.NoError(t, os.Remove(file)) }, "no such file or directory"},
		{"unreadable: a directory", func(t *testing.T, file string) {
			require.NoError(t, os.Remove(file))
			require.NoError(t, os.Mkdir(file, 0o700))
		}, "is a directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newReloadProxy(t, []string{fakeapi.RevokedKey, fakeapi.GoodKey})
			code, _ := p.get(t, "/v1/models")
			require.Equal(t, http.StatusOK, code)

			tc.spoil(t, p.file)
			p.r.settledPoll()
			p.r.settledPoll()
			logs := p.logs.String()
			assert.Equal(t, 1, strings.Count(logs, logRefused), "logged once, however many polls see it: %s", logs)
			assert.Contains(t, logs, "level=WARN "+logRefused+" trigger=file_change file="+p.file)
			assert.Contains(t, logs, tc.why)
			assert.NotContains(t, logs, "has a-space", "never a key, nor a bad one")
			assert.NotContains(t, logs, logReplaced)
			assert.Equal(t, []string{"sk-…REVK dead", "sk-…GOOD ok"}, p.states(t), "the running keys stay")
			code, label := p.get(t, "/v1/models")
			assert.Equal(t, http.StatusOK, code)
			assert.Equal(t, "sk-…GOOD", label)

			p.r.hangup()
			assert.Equal(t, 2, strings.Count(p.logs.String(), logRefused), "SIGHUP says it again")
			assert.Contains(t, p.logs.String(), logRefused+" trigger=SIGHUP")

			if fi, err := os.Stat(p.file); err == nil && fi.IsDir() {
				require.NoError(t, os.Remove(p.file))
			}
			writeKeys(t, p.file, fakeapi.RevokedKey, fakeapi.Good2Key)
			p.r.settledPoll()
			assert.Contains(t, p.logs.String(), logReloaded)
			assert.Equal(t, []string{"sk-…REVK dead", "sk-…GD02 ok"}, p.states(t), "a good file is taken again")
		})
	}
}

// TestReloadPerKeyFlagsMismatch: the per-key flags give their values by
// position, so a file whose count no longer fits one of them is refused
// with a log line that names it, and the running keys stay. A file of the
// same count is reloaded, the flags' values given again. --key-limits with
// one pair is for every key, and fits any count.
func TestReloadPerKeyFlagsMismatch(t *testing.T) {
	cases := []struct {
		args []string
		flag string // "" when any count fits
	}{
		{[]string{"--groups", "acme,acme"}, "--groups"},
		{[]string{"--tiers", "0,1"}, "--tiers"},
		{[]string{"--weights", "1,3"}, "--weights"},
		{[]string{"--key-limits", "1/0,2/0"}, "--key-limits"},
		{[]string{"--tiers", "0,1", "--weights", "1,1"}, "--tiers"},
		{[]string{"--key-limits", "8/500"}, ""},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			p := newReloadProxy(t, []string{fakeapi.GoodKey, fakeapi.Good2Key}, tc.args...)
			writeKeys(t, p.file, fakeapi.GoodKey, fakeapi.Good2Key, fakeapi.LimitedKey)
			p.r.settledPoll()
			logs := p.logs.String()
			if tc.flag == "" {
				assert.Contains(t, logs, logReloaded)
				assert.Len(t, p.states(t), 3)
				return
			}
			assert.Contains(t, logs, "level=WARN "+logRefused)
			assert.Contains(t, logs, tc.flag+" gives 2 values for 3 keys in the file")
			assert.Contains(t, logs, "restart the proxy with "+tc.flag+" for the new keys")
			assert.NotContains(t, logs, logReplaced)
			assert.Equal(t, []string{"sk-…GOOD ok", "sk-…GD02 ok"}, p.states(t), "the running keys stay")

			// The same count is reloaded, with the flags' values again.
			writeKeys(t, p.file, fakeapi.Good2Key, fakeapi.RevokedKey)
			p.r.settledPoll()
			assert.Contains(t, p.logs.String(), logReplaced+" keys=2 added=[sk-…REVK] removed=[sk-…GOOD]")
			assert.Equal(t, []string{"sk-…GD02 ok", "sk-…REVK ok"}, p.states(t))
		})
	}
}

// TestSIGHUPWithKeysFromEnv: keys from the environment cannot be reloaded,
// and SIGHUP says so rather than stopping the proxy.
func TestSIGHUPWithKeysFromEnv(t *testing.T) {
	var logs syncBuffer
	r := &keyReloader{env: "TEST_PROXY_KEYS", log: textLogger(&logs), set: func([]string, ...credpool.KeyOption) error {
		t.Error("keys from the environment are never set again")
		return nil
	}}
	r.hangup()
	assert.Contains(t, logs.String(), "level=WARN")
	assert.Contains(t, logs.String(), "the keys come from the environment, which cannot change under a running process")
	assert.Contains(t, logs.String(), "keys_env=TEST_PROXY_KEYS")
}

// TestPollRereadsRacyFile: a file whose last change is too recent for its
// stat to tell another from it is read at every poll; an older one, whose
// stat is unchanged, is not read.
func TestPollRereadsRacyFile(t *testing.T) {
	p := newReloadProxy(t, []string{fakeapi.GoodKey})
	p.r.settledPoll()
	require.NotNil(t, p.r.stat)

	// The same size and time, as a coarse clock shows a second write.
	require.NoError(t, os.WriteFile(p.file, []byte(strings.Replace(readFile(t, p.file), fakeapi.GoodKey, fakeapi.Good2Key, 1)), 0o600))
	require.NoError(t, os.Chtimes(p.file, p.r.stat.ModTime(), p.r.stat.ModTime()))
	p.r.settledPoll()
	assert.Contains(t, p.logs.String(), logReplaced+" keys=1 added=[sk-…GD02] removed=[sk-…GOOD]", "a racy file is read again")

	// Once the file is older than the window, an unchanged stat is trusted.
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(p.file, old, old))
	p.r.settledPoll() // reads: the time changed
	require.NoError(t, os.WriteFile(p.file, []byte(strings.Replace(readFile(t, p.file), fakeapi.Good2Key, fakeapi.GoodKey, 1)), 0o600))
	require.NoError(t, os.Chtimes(p.file, old, old))
	p.r.settledPoll()
	assert.Equal(t, 1, strings.Count(p.logs.String(), logReplaced), "an unchanged stat of an old file is not read")
	p.r.hangup()
	assert.Equal(t, 2, strings.Count(p.logs.String(), logReplaced), "SIGHUP reads it whatever its stat")
}

// readFile returns the file's text.
func readFile(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	return string(data)
}

// TestKeyLimitsFlag: --key-limits takes in-flight/per-minute pairs, one for
// every key or one per key, 0 for no limit; anything else is a usage error
// that names the flag and the item's place.
func TestKeyLimitsFlag(t *testing.T) {
	cases := []struct {
		value string
		want  []credpool.KeyLimit
		usage string
	}{
		{value: "8/500", want: []credpool.KeyLimit{{InFlight: 8, PerMinute: 500}}},
		{value: "2/3,20/500", want: []credpool.KeyLimit{{InFlight: 2, PerMinute: 3}, {InFlight: 20, PerMinute: 500}}},
		{value: " 2 / 3 , 20/500 ", want: []credpool.KeyLimit{{InFlight: 2, PerMinute: 3}, {InFlight: 20, PerMinute: 500}}},
		{value: "0/500", want: []credpool.KeyLimit{{PerMinute: 500}}},
		{value: "8/0", want: []credpool.KeyLimit{{InFlight: 8}}},
		{value: "0/0", want: []credpool.KeyLimit{{}}},
		{value: "1/0.5", want: []credpool.KeyLimit{{InFlight: 1, PerMinute: 0.5}}},
		{value: "8", usage: `--key-limits: item 1, "8", is not in-flight/per-minute, e.g. 8/500 (0 for no limit)`},
		{value: "8/500,", usage: `--key-limits: item 2, "", is not in-flight/per-minute`},
		{value: "2/3,x/500", usage: `--key-limits: item 2, "x/500": the in-flight count is not a whole number of 0 or more`},
		{value: "-1/500", usage: `--key-limits: item 1, "-1/500": the in-flight count is not a whole number of 0 or more`},
		{value: "1.5/500", usage: `--key-limits: item 1, "1.5/500": the in-flight count is not a whole number of 0 or more`},
		{value: "99999999999/500", usage: `--key-limits: item 1, "99999999999/500": the in-flight count`},
		{value: "8/", usage: `--key-limits: item 1, "8/": the per-minute rate is not a number of 0 or more`},
		{value: "8/-5", usage: `--key-limits: item 1, "8/-5": the per-minute rate is not a number of 0 or more`},
		{value: "8/NaN", usage: `--key-limits: item 1, "8/NaN": the per-minute rate`},
		{value: "8/Inf", usage: `--key-limits: item 1, "8/Inf": the per-minute rate`},
		{value: "8/500/1", usage: `--key-limits: item 1, "8/500/1": the per-minute rate`},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			got, err := parseKeyLimits(tc.value)
			if tc.usage != "" {
				var usage *usageError
				require.ErrorAs(t, err, &usage)
				assert.ErrorContains(t, err, tc.usage)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}

	// From the command line: a usage error, and a count that does not fit
	// the keys, refused when the pool is made.
	t.Setenv("TEST_LIMIT_KEYS", fakeapi.GoodKey+","+fakeapi.Good2Key+","+fakeapi.RevokedKey)
	code, _, errOut := runCLI(t, "proxy", "--upstream", "http://127.0.0.1:9", "--keys-env", "TEST_LIMIT_KEYS", "--key-limits", "8")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, `credpool proxy: --key-limits: item 1, "8", is not in-flight/per-minute`)
	code, _, errOut = runCLI(t, "proxy", "--upstream", "http://127.0.0.1:9", "--keys-env", "TEST_LIMIT_KEYS", "--key-limits", "1/0,2/0")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, errOut, "WithKeyLimits: 2 values for 3 keys")
}

// TestKeyLimitsReachThePool: with --tiers 0,1 both of two slow requests
// at once go to the first key; with --key-limits 1/0 as well, the second
// finds the first key full and goes to the other.
func TestKeyLimitsReachThePool(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--tiers", "0,1"}, []string{fakeapi.GoodKey, fakeapi.GoodKey}},
		{[]string{"--tiers", "0,1", "--key-limits", "1/0"}, []string{fakeapi.GoodKey, fakeapi.Good2Key}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			p := newReloadProxy(t, []string{fakeapi.GoodKey, fakeapi.Good2Key}, tc.args...)
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					resp, err := http.Get(p.url + "/v1/slow")
					if assert.NoError(t, err) {
						resp.Body.Close()
						assert.Equal(t, http.StatusOK, resp.StatusCode)
					}
				})
			}
			require.Eventually(t, func() bool { return len(p.up.Requests()) == 2 }, 5*time.Second, time.Millisecond)
			sent := sentWith(p.up, 0)
			p.up.Release()
			wg.Wait()
			assert.ElementsMatch(t, tc.want, sent)
		})
	}
}

// settledPoll polls twice, as two ticks do: the first poll after a change
// sees it, and the second reads the file, which has stopped changing.
func (r *keyReloader) settledPoll() {
	r.poll()
	r.poll()
}

// TestPollWaitsForTheFileToSettle: a file that changed since the last poll
// is not read until a poll finds it unchanged, so a file being written in
// place is never read half written.
func TestPollWaitsForTheFileToSettle(t *testing.T) {
	p := newReloadProxy(t, []string{fakeapi.GoodKey})
	p.r.settledPoll()
	f, err := os.OpenFile(p.file, os.O_WRONLY|os.O_TRUNC, 0)
	require.NoError(t, err)
	_, err = f.WriteString(fakeapi.Good2Key[:10]) // a shell's redirection, caught in the middle
	require.NoError(t, err)
	p.r.poll()
	assert.NotContains(t, p.logs.String(), "credpool proxy: keys", "a file that just changed is not read")
	_, err = f.WriteString(fakeapi.Good2Key[10:] + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	p.r.settledPoll()
	assert.Contains(t, p.logs.String(), logReplaced+" keys=1 added=[sk-…GD02] removed=[sk-…GOOD]", "read once written whole")
	assert.NotContains(t, p.logs.String(), "not reloaded", "the half-written file was never read")
}
