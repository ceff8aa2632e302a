package credpool

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// secretsOf returns the part of each key that no output may contain: all of
// it but the label's visible tail.
func secretsOf(keys ...string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k[:len(k)-4]
	}
	return out
}

func assertNoSecret(t *testing.T, what, s string, keys ...string) {
	t.Helper()
	for _, secret := range secretsOf(keys...) {
		assert.NotContains(t, s, secret, "%s leaks a key", what)
	}
}

func TestNoKeyInFormattedValues(t *testing.T) {
	p := newProvider(t, func(key string, _ int) reply {
		if key == keyA {
			return reply{status: 401, body: bodyInvalidKey}
		}
		return reply{status: 429, body: bodyRateLimit}
	})
	var changes []StateChange
	var mu sync.Mutex
	tr := newTransport(t, []string{keyA, keyB}, WithMaxWait(0), WithOnStateChange(func(c StateChange) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	}))
	get(t, tr, p.URL)
	_, err := tr.RoundTrip(httptestRequest(t, p.URL))
	require.Error(t, err)

	values := map[string]any{"transport": tr, "*transport": *tr, "status": tr.Status(), "error": err, "changes": changes}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			assertNoSecret(t, name+" "+verb, fmt.Sprintf(verb, v), keyA, keyB)
		}
	}
	assert.Equal(t, "credpool.Transport{keys: 2, ok: 0, exhausted: 1, dead: 1, strategy: round_robin}", fmt.Sprint(tr))
}

func TestNoKeyInLogs(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := newProvider(t, func(key string, _ int) reply {
		switch key {
		case keyA:
			return reply{status: 401, body: bodyInvalidKey}
		case keyB:
			return reply{status: 429, header: map[string]string{"Retry-After": "30"}, body: bodyRateLimit}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, []string{keyA, keyB, keyC}, WithLogger(logger))
	get(t, tr, p.URL)
	get(t, tr, p.URL)
	tr.Reset()

	logs := buf.String()
	assertNoSecret(t, "log", logs, keyA, keyB, keyC)
	assert.Contains(t, logs, `"msg":"credpool: key state changed","key":"sk-…1111","index":0,"from":"ok","to":"dead","reason":"auth_permanent","status":401`)
	assert.Contains(t, logs, `"key":"sk-…2222","index":1,"from":"ok","to":"exhausted","reason":"rate_limit","status":429,"reset_at":`)
	assert.Contains(t, logs, `"level":"WARN"`, "a dead key is a warning")
	assert.Equal(t, 4, strings.Count(logs, "\n"), "two changes, two resets")
}

func TestNoKeyInErrors(t *testing.T) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, &url.Error{Op: "Get", URL: r.URL.String(), Err: errBoom}
	})
	tr := newTransport(t, []string{keyA}, WithBase(base), WithMaxAttempts(1))
	_, err := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
	require.Error(t, err)
	assertNoSecret(t, "error", err.Error(), keyA)
	assert.Contains(t, err.Error(), "sk-…1111", "errors name the key by its label")
}

func TestHostScoping(t *testing.T) {
	cases := []struct {
		name  string
		hosts []string
		url   string
		keyed bool
	}{
		{"exact host", []string{"api.test"}, "http://api.test/v1", true},
		{"host matches any port", []string{"api.test"}, "http://api.test:8443/v1", true},
		{"case ignored", []string{"API.Test"}, "http://api.TEST/v1", true},
		{"host:port matches that port", []string{"api.test:8443"}, "http://api.test:8443/", true},
		{"host:port refuses other port", []string{"api.test:8443"}, "http://api.test:9000/", false},
		{"host:port refuses no port", []string{"api.test:8443"}, "http://api.test/", false},
		{"wildcard matches subdomain", []string{"*.openai.azure.com"}, "https://me.openai.azure.com/", true},
		{"wildcard refuses apex", []string{"*.openai.azure.com"}, "https://openai.azure.com/", false},
		{"wildcard refuses look-alike", []string{"*.openai.azure.com"}, "https://evilopenai.azure.com/", false},
		{"unlisted host", []string{"api.test"}, "http://evil.test/", false},
		{"suffix is not a match", []string{"api.test"}, "http://api.test.evil/", false},
		{"IPv6 literal", []string{"::1"}, "http://[::1]:8080/", true},
		{"second entry", []string{"a.test", "b.test"}, "http://b.test/", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got = r.Header.Get("Authorization")
				return answer(r, 200, ""), nil
			})
			tr := newTransport(t, []string{keyA}, WithBase(base), WithHosts(tc.hosts...))
			req := httptestRequest(t, tc.url)
			req.Header.Set("Authorization", "Bearer caller-own")
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			if tc.keyed {
				assert.Equal(t, "Bearer "+keyA, got)
			} else {
				assert.Equal(t, "Bearer caller-own", got, "an unlisted host gets the request as it is, without a key")
				assert.Zero(t, tr.Status()[0].Requests)
			}
		})
	}
}

func TestRedirects(t *testing.T) {
	// Two servers on two host names: 127.0.0.1 and localhost.
	var foreignSaw, localSaw []string
	var mu sync.Mutex
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		foreignSaw = append(foreignSaw, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer foreign.Close()
	foreignURL := strings.Replace(foreign.URL, "127.0.0.1", "localhost", 1)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		localSaw = append(localSaw, r.Header.Get("Authorization"))
		mu.Unlock()
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/away":
			code := http.StatusFound
			if c := r.URL.Query().Get("code"); c != "" {
				fmt.Sscan(c, &code)
			}
			http.Redirect(w, r, foreignURL+"/landing", code)
		}
	}))
	defer origin.Close()

	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprintf("cross-host %d gets no key", code), func(t *testing.T) {
			tr := newTransport(t, []string{keyA})
			foreignSaw = nil
			status, _ := get(t, tr, fmt.Sprintf("%s/away?code=%d", origin.URL, code))
			assert.Equal(t, 200, status)
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, []string{""}, foreignSaw)
		})
	}
	t.Run("same-host redirect keeps the key", func(t *testing.T) {
		tr := newTransport(t, []string{keyA})
		localSaw = nil
		status, _ := get(t, tr, origin.URL+"/same")
		assert.Equal(t, 200, status)
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []string{"Bearer " + keyA, "Bearer " + keyA}, localSaw)
	})
}
