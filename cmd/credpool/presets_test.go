// presets_test.go checks that each --preset name puts the key where its
// provider expects it.

package main

import (
	"net/http"
	"testing"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordHeader is a base transport that keeps the last request's headers.
type recordHeader struct{ last http.Header }

func (r *recordHeader) RoundTrip(req *http.Request) (*http.Response, error) {
	r.last = req.Header.Clone()
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
}

func TestPresetsByName(t *testing.T) {
	want := map[string][2]string{ // header, value
		"openai":     {"Authorization", "Bearer " + fakeapi.GoodKey},
		"anthropic":  {"X-Api-Key", fakeapi.GoodKey},
		"gemini":     {"X-Goog-Api-Key", fakeapi.GoodKey},
		"azure":      {"Api-Key", fakeapi.GoodKey},
		"openrouter": {"Authorization", "Bearer " + fakeapi.GoodKey},
		"groq":       {"Authorization", "Bearer " + fakeapi.GoodKey},
		"mistral":    {"Authorization", "Bearer " + fakeapi.GoodKey},
		"deepseek":   {"Authorization", "Bearer " + fakeapi.GoodKey},
		"xai":        {"Authorization", "Bearer " + fakeapi.GoodKey},
		"github":     {"Authorization", "Bearer " + fakeapi.GoodKey},
		"":           {"Authorization", "Bearer " + fakeapi.GoodKey},
		"OpenAI":     {"Authorization", "Bearer " + fakeapi.GoodKey},
	}
	assert.Len(t, presets, 10)
	for name, w := range want {
		p, opts, err := lookupPreset(name)
		require.NoError(t, err, name)
		assert.NotEmpty(t, p.checkPath, name)
		base := &recordHeader{}
		tr, err := credpool.New([]string{fakeapi.GoodKey}, append(opts, credpool.WithBase(base))...)
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:9/v1/models", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+fakeapi.ClientKey)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err, name)
		resp.Body.Close()
		assert.Equal(t, w[1], base.last.Get(w[0]), "preset %q", name)
	}

	_, _, err := lookupPreset("acme")
	var usage *usageError
	require.ErrorAs(t, err, &usage)
	assert.Contains(t, err.Error(), `unknown --preset "acme"`)
	assert.Contains(t, err.Error(), presetNames())
}
