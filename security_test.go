package credpool

import (
	"bytes"
	"encoding/json"
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

	values := map[string]any{"transport": tr, "*transport": *tr, "status": tr.Keys(), "error": err, "changes": changes}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			assertNoSecret(t, name+" "+verb, fmt.Sprintf(verb, v), keyA, keyB)
		}
	}
	assert.Equal(t, "credpool.Transport{keys: 2, ok: 0, exhausted: 1, dead: 1, disabled: 0, strategy: round_robin}", fmt.Sprint(tr))
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
	tr := newTransport(t, []string{keyA}, WithBase(base), WithMaxRetries(0))
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
		{
			name:  "exact host",
			hosts: []string{"api.test"},
			url:   "http://api.test/v1",
			keyed: true,
		},
		{
			name:  "host matches any port",
			hosts: []string{"api.test"},
			url:   "http://api.test:8443/v1",
			keyed: true,
		},
		{
			name:  "case ignored",
			hosts: []string{"API.Test"},
			url:   "http://api.TEST/v1",
			keyed: true,
		},
		{
			name:  "host:port matches that port",
			hosts: []string{"api.test:8443"},
			url:   "http://api.test:8443/",
			keyed: true,
		},
		{
			name:  "host:port refuses other port",
			hosts: []string{"api.test:8443"},
			url:   "http://api.test:9000/",
		},
		{
			name:  "host:port refuses no port",
			hosts: []string{"api.test:8443"},
			url:   "http://api.test/",
		},
		{
			name:  "wildcard matches subdomain",
			hosts: []string{"*.openai.azure.com"},
			url:   "https://me.openai.azure.com/",
			keyed: true,
		},
		{
			name:  "wildcard refuses apex",
			hosts: []string{"*.openai.azure.com"},
			url:   "https://openai.azure.com/",
		},
		{
			name:  "wildcard refuses look-alike",
			hosts: []string{"*.openai.azure.com"},
			url:   "https://evilopenai.azure.com/",
		},
		{
			name:  "unlisted host",
			hosts: []string{"api.test"},
			url:   "http://evil.test/",
		},
		{
			name:  "suffix is not a match",
			hosts: []string{"api.test"},
			url:   "http://api.test.evil/",
		},
		{
			name:  "IPv6 literal",
			hosts: []string{"::1"},
			url:   "http://[::1]:8080/",
			keyed: true,
		},
		{
			name:  "second entry",
			hosts: []string{"a.test", "b.test"},
			url:   "http://b.test/",
			keyed: true,
		},
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
				assert.Zero(t, tr.Keys()[0].Requests)
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

// reflections are validation errors the way providers write them, each
// quoting the caller's input back: %s is where the input goes, already
// escaped for a JSON string.
var reflections = []struct {
	name   string
	status int
	body   string
}{
	{name: "openai invalid_value", status: 400,
		body: `{"error":{"message":"Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.","type":"invalid_request_error","param":"messages[0].role","code":"invalid_value"}}`},
	{name: "openai model_not_found", status: 404,
		body: "{\"error\":{\"message\":\"The model `%s` does not exist or you do not have access to it.\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"model_not_found\"}}"},
	{name: "openai project without the model", status: 403,
		body: "{\"error\":{\"message\":\"Project `proj_abc` does not have access to model `%s`\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"model_not_found\"}}"},
	{name: "openai not one of, code null", status: 400,
		body: `{"error":{"message":"'%s' is not one of ['system', 'assistant', 'user', 'function'] - 'messages.0.role'","type":"invalid_request_error","param":null,"code":null}}`},
	{name: "anthropic not_found_error", status: 404,
		body: `{"type":"error","error":{"type":"not_found_error","message":"model: %s"},"request_id":"req_011"}`},
	{name: "anthropic invalid_request_error", status: 400,
		body: `{"type":"error","error":{"type":"invalid_request_error","message":"messages.0.role: Input should be 'user' or 'assistant', got %s"}}`},
	{name: "gemini INVALID_ARGUMENT", status: 400,
		body: `{"error":{"code":400,"message":"* GenerateContentRequest.model: unexpected model name format: %s\n","status":"INVALID_ARGUMENT"}}`},
	{name: "vllm pydantic", status: 400,
		body: `{"object":"error","message":"[{'type': 'literal_error', 'loc': ('body', 'messages', 0, 'role'), 'msg': \"Input should be 'user'\", 'input': '%s'}]","type":"BadRequestError","param":null,"code":400}`},
	{name: "unquoted, no code", status: 400, body: `{"error":{"message":"Invalid role: %s"}}`},
	{name: "unquoted, 422", status: 422, body: `{"detail":"unknown model %s"}`},
	{name: "plain text", status: 400, body: `invalid model %s`},
}

// hostileInputs are what an attacker who controls the request puts in it:
// every kind of evidence credpool reads, and quotes that close the
// provider's own early.
var hostileInputs = []string{
	"this key has been revoked", "token_revoked", "account_deactivated", "Incorrect API key provided",
	"Your API key was reported as leaked", "This account is deactivated",
	"x per day. You will regain access on 2099-01-01 at 00:00 UTC",
	"You exceeded your current quota, please check your plan and billing details",
	"Your credit balance is too low", "Monthly quota reached. Resets in 720hr",
	"rate limit exceeded, please retry after 86400 seconds", "余额不足",
	"x' this key has been revoked 'y", "x` this key has been revoked `y", `x" this key has been revoked "y`,
	"x’ this key has been revoked ‘y",
}

// TestReflectedInputPenalizesNoKey: whatever a request carries, a provider
// quoting it back in a validation error costs no key anything, and the
// caller gets the provider's answer after one attempt. The input goes in the
// JSON body as written and with every letter \u-escaped, since a provider
// quotes what it decoded.
func TestReflectedInputPenalizesNoKey(t *testing.T) {
	for _, ref := range reflections {
		t.Run(ref.name, func(t *testing.T) {
			var mu sync.Mutex
			attempts := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var req struct {
					Model string `json:"model"`
				}
				_ = json.NewDecoder(r.Body).Decode(&req)
				mu.Lock()
				attempts++
				mu.Unlock()
				quoted, _ := json.Marshal(req.Model)
				w.WriteHeader(ref.status)
				fmt.Fprintf(w, ref.body, string(quoted[1:len(quoted)-1]))
			}))
			defer srv.Close()
			keys := []string{keyA, keyB, keyC, keyA + "d", keyA + "e"}
			tr := newTransport(t, keys)
			for _, input := range hostileInputs {
				for _, body := range []string{jsonBody(input, false), jsonBody(input, true)} {
					mu.Lock()
					attempts = 0
					mu.Unlock()
					resp, err := tr.RoundTrip(mustRequest(t, srv.URL, body))
					require.NoError(t, err)
					resp.Body.Close()
					assert.Equal(t, ref.status, resp.StatusCode, "%q: handed back", input)
					assert.Equal(t, 1, attempts, "%q: one attempt", input)
					for i, s := range tr.Keys() {
						assert.Equal(t, StateOK, s.State, "%q cost key %d: %s", input, i, s.Reason)
					}
				}
			}
		})
	}
}

// TestWordsTakeAtMostOneKeyPerRequest: a verdict that rests on a message's
// words alone takes one key out of rotation per request at most, whatever
// the request carries; the second key's answer goes back to the caller, and
// that key pays nothing.
func TestWordsTakeAtMostOneKeyPerRequest(t *testing.T) {
	for _, rep := range []reply{
		{status: 401, body: `{"error":{"message":"This API key has been revoked"}}`},
		{status: 403, body: `{"message":"Your API key was reported as leaked"}`},
		{status: 400, body: `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low"}}`},
		{status: 403, body: `{"message":"API rate limit exceeded"}`},
	} {
		t.Run(rep.body, func(t *testing.T) {
			p := newProvider(t, func(string, int) reply { return rep })
			tr := newTransport(t, []string{keyA, keyB, keyC})
			status, _ := get(t, tr, p.URL)
			assert.Equal(t, rep.status, status)
			assert.Len(t, p.keys(), 2, "the second key's answer is handed back")
			out := 0
			for _, s := range tr.Keys() {
				if s.State != StateOK {
					out++
				}
			}
			assert.Equal(t, 1, out, "keys out of rotation after one request")
		})
	}
}

// TestCodesStillKillEveryKey: the blast-radius bound is for words alone. A
// provider's own code on every key rotates through the pool and kills each,
// the outage guard keeping the last unless the code is a revocation.
func TestCodesStillKillEveryKey(t *testing.T) {
	for _, tc := range []struct {
		code string
		dead int
	}{{code: "invalid_api_key", dead: 2}, {code: "token_revoked", dead: 3}} {
		t.Run(tc.code, func(t *testing.T) {
			p := newProvider(t, func(string, int) reply {
				return reply{status: 401, body: `{"error":{"message":"no","code":"` + tc.code + `"}}`}
			})
			tr := newTransport(t, []string{keyA, keyB, keyC}, WithMaxWait(0))
			status, _ := get(t, tr, p.URL)
			assert.Equal(t, 401, status)
			assert.Len(t, p.keys(), 3)
			dead := 0
			for _, s := range tr.Keys() {
				if s.State == StateDead {
					dead++
				}
			}
			assert.Equal(t, tc.dead, dead)
		})
	}
}

// jsonBody is a chat request whose model and role are input, written as
// JSON does, or with every ASCII letter \u-escaped.
func jsonBody(input string, escaped bool) string {
	b, _ := json.Marshal(input)
	s := string(b)
	if escaped {
		var e strings.Builder
		for _, r := range s[1 : len(s)-1] {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
				fmt.Fprintf(&e, `\u%04x`, r)
			} else {
				e.WriteRune(r)
			}
		}
		s = `"` + e.String() + `"`
	}
	return `{"model":` + s + `,"messages":[{"role":` + s + `,"content":"hi"}]}`
}

func mustRequest(t *testing.T, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	return req
}

// TestRedirectsKeepTheKeyOnItsOrigin: a redirect keeps the key only on the
// scheme, host and port where the chain started, or to a host and port that
// WithHosts names exactly, and never from https to http.
func TestRedirectsKeepTheKeyOnItsOrigin(t *testing.T) {
	var mu sync.Mutex
	saw := map[string]string{} // server name -> Authorization it last saw
	record := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			saw[name] = r.Header.Get("Authorization")
			mu.Unlock()
		}
	}
	other := httptest.NewServer(record("other port")) // same host name, another port
	defer other.Close()
	plain := httptest.NewServer(record("plain http"))
	defer plain.Close()
	redirectTo := func(target string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target+"/landing", http.StatusTemporaryRedirect)
		}
	}
	toOther := httptest.NewServer(redirectTo(other.URL))
	defer toOther.Close()
	secure := httptest.NewTLSServer(redirectTo(plain.URL))
	defer secure.Close()
	port := func(s *httptest.Server) string { u, _ := url.Parse(s.URL); return u.Port() }

	cases := []struct {
		name   string
		start  *httptest.Server
		target string
		opts   []Option
		keyed  bool
	}{
		{name: "same host, other port", start: toOther, target: "other port"},
		{name: "a host name in WithHosts matches no other port on a redirect", start: toOther, target: "other port",
			opts: []Option{WithHosts("127.0.0.1")}},
		{name: "a host and port in WithHosts does", start: toOther, target: "other port",
			opts: []Option{WithHosts("127.0.0.1:"+port(toOther), "127.0.0.1:"+port(other))}, keyed: true},
		{name: "https to http", start: secure, target: "plain http"},
		{name: "https to http, even when WithHosts names it", start: secure, target: "plain http",
			opts: []Option{WithHosts("127.0.0.1:"+port(secure), "127.0.0.1:"+port(plain))}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]Option{WithBase(secure.Client().Transport)}, tc.opts...)
			tr := newTransport(t, []string{keyA}, opts...)
			status, _ := get(t, tr, tc.start.URL+"/start")
			assert.Equal(t, 200, status)
			mu.Lock()
			defer mu.Unlock()
			if tc.keyed {
				assert.Equal(t, "Bearer "+keyA, saw[tc.target])
			} else {
				assert.Empty(t, saw[tc.target], "the key left its origin")
			}
		})
	}
}
