// proxycmd_test.go tests the proxy command's flags and their checks (the
// loopback rule, --listen, --upstream, --replay-budget, the per-key flags,
// the re-check flags), and its server:
// timeouts, and draining the requests in flight on SIGINT. The proxy itself
// is tested in internal/proxy.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/credpool/credpool/cmd/credpool/internal/proxy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProxyConfigRefusesOpenRelay(t *testing.T) {
	cases := []struct {
		listen, token string
		ok            bool
	}{
		{"127.0.0.1:8787", "", true},
		{"[::1]:8787", "", true},
		{"localhost:8787", "", true},
		{"0.0.0.0:8787", "", false},
		{":8787", "", false},
		{"192.0.2.10:8787", "", false},
		{"proxy.example:8787", "", false},
		{"0.0.0.0:8787", fakeapi.Token, true},
		{"127.0.0.1:8787", "tiny-tok", false},
		{"0.0.0.0:8787", "has a space in it, long enough", false},
	}
	for _, c := range cases {
		o := &proxyOptions{upstream: "https://api.openai.com", listen: c.listen, tokenEnv: defaultTokenEnv, shutdownTimeout: time.Second}
		_, err := o.config(c.token)
		if c.ok {
			assert.NoError(t, err, "listen %s", c.listen)
			continue
		}
		var usage *usageError
		if assert.ErrorAs(t, err, &usage, "listen %s token %q", c.listen, c.token) && c.token != "" {
			assert.NotContains(t, err.Error(), c.token, "the error never shows the token")
		}
	}
}

// TestProxyConfigListen checks that a --listen address that cannot be
// listened on is reported for what is wrong with it, before the loopback
// rule, which would otherwise call it "not a loopback address".
func TestProxyConfigListen(t *testing.T) {
	cases := []struct {
		listen string
		err    string // "" for none
	}{
		{"127.0.0.1:8787", ""},
		{"127.0.0.1:0", ""},
		{"[::1]:65535", ""},
		{"localhost:http", ""}, // a service name, as net.Listen takes
		{"127.0.0.1:99999", "port 99999 is out of range"},
		{"0.0.0.0:99999", "port 99999 is out of range"},
		{"127.0.0.1:-1", "port -1 is out of range"},
		{"127.0.0.1:123456789012345678901", "port 123456789012345678901 is out of range"},
		{"localhost:http2x", `port "http2x" is not a number or a service name`},
		{"0.0.0.0:http2x", `port "http2x" is not a number or a service name`},
		{"127.0.0.1:", "has no port"},
		{"127.0.0.1", "is not host:port"},
		{"::1:8787", "is not host:port"},
		{"[::1:8787", "is not host:port"},
	}
	for _, c := range cases {
		t.Run(c.listen, func(t *testing.T) {
			o := &proxyOptions{upstream: "https://api.openai.com", listen: c.listen, tokenEnv: defaultTokenEnv, shutdownTimeout: time.Second}
			_, err := o.config("")
			if c.err == "" {
				assert.NoError(t, err)
				return
			}
			var usage *usageError
			require.ErrorAs(t, err, &usage)
			assert.Contains(t, err.Error(), "--listen")
			assert.Contains(t, err.Error(), c.err)
			assert.NotContains(t, err.Error(), "loopback")
		})
	}
}

func TestProxyUpstreamMustNotHoldCredentials(t *testing.T) {
	for _, u := range []string{"https://user:pass@api.example", "https://api.example/?key=abc", "ftp://api.example", "api.example"} {
		o := &proxyOptions{upstream: u, listen: "127.0.0.1:8787", shutdownTimeout: time.Second}
		_, err := o.config("")
		assert.Error(t, err, u)
		if err != nil {
			assert.NotContains(t, err.Error(), "pass", u)
		}
	}
}

func TestReplayBudgetFlag(t *testing.T) {
	cases := []struct {
		args []string
		want int64
		err  string
	}{
		{nil, 64 << 20, ""},
		{[]string{"--replay-budget", "16MiB"}, 16 << 20, ""},
		{[]string{"--replay-budget", "0"}, 0, ""},
		{[]string{"--replay-budget", "1048576"}, 1 << 20, ""},
		{[]string{"--replay-budget=2GiB"}, 2 << 30, ""},
		{[]string{"--replay-budget", "500KB"}, 500_000, ""},
		{[]string{"--replay-budget", "1.5MiB"}, 0, "whole number"},
		{[]string{"--replay-budget", "-1MiB"}, 0, "whole number"},
		{[]string{"--replay-budget", "64XB"}, 0, "unit"},
		{[]string{"--replay-budget", ""}, 0, "whole number"},
		{[]string{"--replay-budget", "99999999999GiB"}, 0, "too large"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.args), func(t *testing.T) {
			fs, o := proxyFlags()
			err := parse(fs, append([]string{"--upstream", "http://127.0.0.1:9"}, c.args...))
			if c.err != "" {
				var usage *usageError
				require.ErrorAs(t, err, &usage)
				assert.Contains(t, err.Error(), "-replay-budget")
				assert.Contains(t, err.Error(), c.err)
				return
			}
			require.NoError(t, err)
			assert.EqualValues(t, c.want, o.replayBudget)
			_, err = o.config("")
			require.NoError(t, err)
		})
	}
	code, _, errOut := runCLI(t, "proxy", "--upstream", "http://127.0.0.1:9", "--replay-budget", "lots")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, `invalid value "lots" for flag -replay-budget`)
}

// TestServerTimeouts checks the server's own timeouts: headers must come
// soon and idle connections close, but nothing bounds a whole request or
// response, which would cut large uploads and long streams.
func TestServerTimeouts(t *testing.T) {
	srv := newServer(http.NotFoundHandler(), fakeapi.DiscardLogger())
	assert.Positive(t, srv.ReadHeaderTimeout)
	assert.LessOrEqual(t, srv.ReadHeaderTimeout, 30*time.Second)
	assert.Positive(t, srv.IdleTimeout)
	assert.LessOrEqual(t, srv.IdleTimeout, 5*time.Minute)
	assert.Zero(t, srv.ReadTimeout, "a whole-request deadline would cut large honest uploads")
	assert.Zero(t, srv.WriteTimeout, "a whole-response deadline would cut long streams")
	assert.Positive(t, srv.MaxHeaderBytes)
}

func TestServeDrainsInFlightRequests(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	fs, o := proxyFlags()
	require.NoError(t, parse(fs, []string{"--upstream", up.URL, "--listen", "127.0.0.1:0", "--preset", "openai"}))
	cfg, err := o.config("")
	require.NoError(t, err)
	p, err := proxy.New(cfg, []string{fakeapi.GoodKey})
	require.NoError(t, err)
	defer p.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: p, ReadHeaderTimeout: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, srv, ln, 5*time.Second) }()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	got := make(chan int, 1)
	go func() {
		resp, err := client.Get("http://" + ln.Addr().String() + "/v1/slow")
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	require.Eventually(t, func() bool { return len(up.Requests()) == 1 }, 5*time.Second, 5*time.Millisecond)
	cancel() // SIGINT
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-served:
		t.Fatalf("serve returned %v with a request in flight", err)
	default:
	}
	up.Release()
	assert.Equal(t, http.StatusOK, <-got, "the request in flight finishes")
	assert.NoError(t, <-served)
}

// TestPerKeyFlags: --groups, --tiers and --weights name one value per key;
// a count that does not match the keys is refused when the pool is made, and
// an item that is not a number at once, by its place.
func TestPerKeyFlags(t *testing.T) {
	three := []string{fakeapi.GoodKey, fakeapi.Good2Key, fakeapi.RevokedKey}
	cases := []struct {
		name     string
		args     []string
		keys     []string
		usage    string // a usage error from the flags
		newError string // New's error
	}{
		{name: "groups, one per key", args: []string{"--groups", "acme, acme,"}, keys: three},
		{name: "tiers and weights", args: []string{"--tiers", "0,0,1", "--weights", "0.8, 0.2, 1"}, keys: three},
		{name: "none", keys: three[:1]},
		{name: "too few groups", args: []string{"--groups", "acme"}, keys: three[:2],
			newError: "credpool: invalid option: WithGroups: 1 values for 2 keys"},
		{name: "too many tiers", args: []string{"--tiers", "0,1,2"}, keys: three[:2],
			newError: "credpool: invalid option: WithTiers: 3 values for 2 keys"},
		{name: "a tier that is not a number", args: []string{"--tiers", "0,free"}, keys: three[:2],
			usage: `--tiers: item 2, "free", is not a number`},
		{name: "a weight that is not a number", args: []string{"--weights", "1,,2"}, keys: three,
			usage: `--weights: item 2, "", is not a number`},
		{name: "a zero weight", args: []string{"--weights", "1,0"}, keys: three[:2],
			newError: "credpool: invalid option: WithWeights: weight 0 of key 1 is not positive and finite"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs, o := proxyFlags()
			require.NoError(t, parse(fs, append([]string{"--upstream", "http://127.0.0.1:9"}, tc.args...)))
			cfg, err := o.config("")
			if tc.usage != "" {
				var usage *usageError
				require.ErrorAs(t, err, &usage)
				assert.EqualError(t, err, tc.usage)
				return
			}
			require.NoError(t, err)
			p, err := proxy.New(cfg, tc.keys)
			if tc.newError != "" {
				assert.ErrorContains(t, err, tc.newError)
				return
			}
			require.NoError(t, err)
			p.Close()
		})
	}
}

// TestRecheckFlags: --recheck-every, --recheck-url and --recheck-method
// reach the pool as credpool.WithRecheck; a value that cannot work is a
// usage error naming its flag, and a URL on a host the keys are not sent to
// is refused when the pool is made, as the library matches --hosts.
func TestRecheckFlags(t *testing.T) {
	const up = "http://127.0.0.1:9"
	cases := []struct {
		name     string
		args     []string
		usage    string // a usage error from the flags
		newError string // New's error
	}{
		{name: "off by default"},
		{name: "every ten minutes", args: []string{"--recheck-every", "10m", "--recheck-url", up + "/v1/models"}},
		{name: "a minute, with HEAD", args: []string{"--recheck-every", "1m", "--recheck-url", up + "/v1/models", "--recheck-method", "HEAD"}},
		{name: "explicitly off", args: []string{"--recheck-every", "0"}},
		{name: "under a minute", args: []string{"--recheck-every", "30s", "--recheck-url", up + "/v1/models"},
			usage: "--recheck-every 30s is under a minute"},
		{name: "negative", args: []string{"--recheck-every", "-5m", "--recheck-url", up + "/v1/models"},
			usage: "--recheck-every -5m0s is under a minute"},
		{name: "not a duration", args: []string{"--recheck-every", "hourly"},
			usage: `invalid value "hourly" for flag -recheck-every`},
		{name: "no URL", args: []string{"--recheck-every", "10m"},
			usage: "--recheck-every needs --recheck-url"},
		{name: "a URL but no interval", args: []string{"--recheck-url", up + "/v1/models"},
			usage: "--recheck-url is set but --recheck-every is not"},
		{name: "a relative URL", args: []string{"--recheck-every", "10m", "--recheck-url", "/v1/models"},
			usage: "--recheck-url must be an absolute http:// or https:// URL"},
		{name: "not http", args: []string{"--recheck-every", "10m", "--recheck-url", "ftp://127.0.0.1:9/models"},
			usage: "--recheck-url must be an absolute http:// or https:// URL"},
		{name: "credentials in the URL", args: []string{"--recheck-every", "10m", "--recheck-url", "http://user:hunter2@127.0.0.1:9/v1/models"},
			usage: "--recheck-url must not hold credentials"},
		{name: "a method with a space", args: []string{"--recheck-every", "10m", "--recheck-url", up + "/v1/models", "--recheck-method", "GE T"},
			usage: `--recheck-method "GE T" is not an HTTP method`},
		{name: "no method", args: []string{"--recheck-every", "10m", "--recheck-url", up + "/v1/models", "--recheck-method", ""},
			usage: `--recheck-method "" is not an HTTP method`},
		{name: "a host the keys are not sent to", args: []string{"--recheck-every", "10m", "--recheck-url", "https://api.openai.com/v1/models"},
			newError: "credpool: invalid option: WithRecheck: api.openai.com is not a host the keys are sent to"},
		{name: "a host --hosts names", args: []string{"--hosts", "127.0.0.1:9,api.openai.com", "--recheck-every", "10m", "--recheck-url", "https://api.openai.com/v1/models"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs, o := proxyFlags()
			err := parse(fs, append([]string{"--upstream", up}, tc.args...))
			var cfg proxy.Config
			if err == nil {
				cfg, err = o.config("")
			}
			if tc.usage != "" {
				var usage *usageError
				require.ErrorAs(t, err, &usage)
				assert.ErrorContains(t, err, tc.usage)
				assert.NotContains(t, err.Error(), "hunter2", "the error never shows a URL's credentials")
				return
			}
			require.NoError(t, err)
			p, err := proxy.New(cfg, []string{fakeapi.GoodKey})
			if tc.newError != "" {
				assert.ErrorContains(t, err, tc.newError)
				return
			}
			require.NoError(t, err)
			p.Close()
		})
	}

	code, _, errOut := runCLI(t, "proxy", "--upstream", up, "--recheck-every", "10m")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "credpool proxy: --recheck-every needs --recheck-url")
}

// TestRecheckFlagsReachThePool runs the proxy the flags configure, in a
// synctest bubble whose clock moves only when every goroutine waits: a
// revoked key dies, each --recheck-every the pool sends the request the
// flags name with it, and the key is back in rotation once that succeeds.
// The proxy is served in memory, and the upstream is a function: no
// network, so the bubble's clock is the only one.
func TestRecheckFlagsReachThePool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu        sync.Mutex
			rechecks  []string // method, URL and key of each re-check
			reinstate bool
		)
		upstream := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			mu.Lock()
			defer mu.Unlock()
			if r.URL.Path == "/v1/models" {
				rechecks = append(rechecks, r.Method+" "+r.URL.String()+" "+key)
			}
			if key == fakeapi.RevokedKey && !reinstate {
				return jsonResponse(r, http.StatusUnauthorized, fakeapi.RevokedBody), nil
			}
			return jsonResponse(r, http.StatusOK, fakeapi.ModelsBody), nil
		})
		seen := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), rechecks...)
		}

		fs, o := proxyFlags()
		require.NoError(t, parse(fs, []string{"--upstream", "https://api.test/v1", "--preset", "openai",
			"--recheck-every", "10m", "--recheck-url", "https://api.test/v1/models", "--recheck-method", "HEAD"}))
		cfg, err := o.config("")
		require.NoError(t, err)
		cfg.Options = append(cfg.Options, credpool.WithBase(upstream))
		p, err := proxy.New(cfg, []string{fakeapi.RevokedKey, fakeapi.GoodKey})
		require.NoError(t, err)
		defer p.Close()
		serve := func(method, path string) (int, string) {
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, httptest.NewRequest(method, "http://127.0.0.1:8787"+path, nil))
			return rec.Code, rec.Body.String()
		}
		state := func() string {
			code, body := serve(http.MethodGet, "/credpool/status")
			require.Equal(t, http.StatusOK, code, body)
			var st struct {
				Keys []struct {
					State string `json:"state"`
				} `json:"keys"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &st))
			return st.Keys[0].State
		}

		code, body := serve(http.MethodPost, "/v1/chat/completions")
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, "dead", state())
		assert.Empty(t, seen(), "no re-check before the first interval")

		time.Sleep(10 * time.Minute) // the bubble's clock: no real waiting
		synctest.Wait()
		assert.Equal(t, []string{"HEAD https://api.test/v1/models " + fakeapi.RevokedKey}, seen(),
			"one re-check, as the flags name it, with the dead key only")
		assert.Equal(t, "dead", state(), "a 401 leaves it dead")

		mu.Lock()
		reinstate = true
		mu.Unlock()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		assert.Len(t, seen(), 2)
		assert.Equal(t, "ok", state(), "a 2xx puts it back in rotation")
		_, metrics := serve(http.MethodGet, "/metrics")
		assert.Contains(t, metrics, `credpool_rechecks_total{pool="openai"} 2`)
		assert.Contains(t, metrics, `credpool_revived_total{pool="openai"} 1`)
	})
}

// roundTripFunc is an upstream made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip implements http.RoundTripper.
func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// jsonResponse is an upstream's answer to r.
func jsonResponse(r *http.Request, status int, body string) *http.Response {
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r,
	}
}
