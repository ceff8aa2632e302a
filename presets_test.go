package credpool

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPresetsSetTheHeader(t *testing.T) {
	cases := []struct {
		name    string
		preset  Option // nil: no preset, the default
		header  string
		want    string
		dropped bool // the caller's Authorization placeholder is removed
	}{
		{name: "no preset (OpenAI, OpenRouter, Groq, Mistral, DeepSeek, xAI)", header: "Authorization", want: "Bearer " + keyA},
		{name: "Anthropic", preset: Anthropic(), header: "X-Api-Key", want: keyA, dropped: true},
		{name: "Gemini", preset: Gemini(), header: "X-Goog-Api-Key", want: keyA},
		{name: "AzureOpenAI", preset: AzureOpenAI(), header: "Api-Key", want: keyA},
		{name: "GitHub", preset: GitHub(), header: "Authorization", want: "Bearer " + keyA},
		{name: "Anthropic then GitHub", preset: optionFunc(func(c *config) { Anthropic().apply(c); GitHub().apply(c) }), header: "Authorization", want: "Bearer " + keyA},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got http.Header
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				got = r.Header
				return answer(r, 200, ""), nil
			})
			opts := []Option{WithBase(base)}
			if tc.preset != nil {
				opts = append(opts, tc.preset)
			}
			tr := newTransport(t, []string{keyA}, opts...)
			req := httptestRequest(t, "http://api.test/")
			req.Header.Set("Authorization", "Bearer sdk-placeholder")
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, []string{tc.want}, got.Values(tc.header))
			if tc.header != "Authorization" {
				assert.Equal(t, tc.dropped, got.Get("Authorization") == "")
			}
		})
	}
}

func TestGitHubForbiddenIsPermission(t *testing.T) {
	forbidden := reply{status: 403, body: `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest","status":"403"}`}
	p := newProvider(t, func(string, int) reply { return forbidden })

	tr := newTransport(t, []string{keyA, keyB}, GitHub())
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 403, status, "a missing permission is handed back")
	assert.Equal(t, StateOK, tr.Keys()[0].State, "and the token stays in rotation")

	generic := newTransport(t, []string{keyA, keyB})
	get(t, generic, p.URL)
	assert.Equal(t, ReasonAuth, generic.Keys()[0].Reason, "without the preset an unexplained 403 cools the key")
}

func TestGitHubRateLimitOn403(t *testing.T) {
	p := newProvider(t, func(key string, _ int) reply {
		if key == keyA {
			return reply{status: 403, header: map[string]string{"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "1"},
				body: `{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest"}`}
		}
		return reply{status: 200, body: "ok"}
	})
	tr := newTransport(t, []string{keyA, keyB}, GitHub(), WithStrategy(FillFirst))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 200, status)
	assert.Equal(t, ReasonRateLimit, tr.Keys()[0].Reason)
}
