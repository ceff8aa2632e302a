package integration_test

// google.golang.org/genai (the Gemini API backend) with credpool.
//
// Recommended SDK retry setting: leave HTTPOptions.RetryOptions nil, which is
// genai's default and makes one HTTP request per call; if you set it, use
// Attempts: 2 at most. credpool already replays a request on another key at
// once when a key is invalid or out of quota, and backs off on 503 UNAVAILABLE
// (4 attempts: WithMaxRetries, 3 by default). An empty RetryOptions means 5 attempts
// with waits from 1 s to 60 s: TestGenAIRetriesCombine measures 20 upstream
// attempts for one call during a 503 storm (4 with RetryOptions nil), and
// once every key is out of its daily quota, genai's retries turn the
// provider's 429 RESOURCE_EXHAUSTED into credpool.ErrNoKeys.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genai"
)

var geminiKeys = []string{"AIzaSyPoolKeyZero00000000000000000Ee44", "AIzaSyPoolKeyOne111111111111111111Ff55"}

// Gemini's real error bodies (see /work/shared/reference/provider-errors.md).
const (
	geminiInvalidKey  = `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}},{"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"API key not valid. Please pass a valid API key."}]}}`
	geminiPerMinute   = `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 15, model: gemini-2.0-flash\nPlease retry in 47.352349s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.0-flash"}}]},{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"47s"}]}}`
	geminiPerDay      = `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 50, model: gemini-2.5-pro\nPlease retry in 23.48s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaDimensions":{"location":"global","model":"gemini-2.5-pro"}}]},{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"23s"}]}}`
	geminiUnavailable = `{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}`

	geminiResponse = `{"candidates":[{"content":{"parts":[{"text":"Hello from the pool"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":4,"totalTokenCount":9},"modelVersion":"gemini-2.0-flash","responseId":"pool-1"}`
)

// geminiPerMinuteShort is the per-minute body with a retry delay short enough
// for a test.
var geminiPerMinuteShort = strings.NewReplacer("47.352349s", "0.02s", `"47s"`, `"0.020s"`).Replace(geminiPerMinute)

// geminiChunks is a streamGenerateContent?alt=sse stream, as Gemini sends it.
var geminiChunks = []string{
	`data: {"candidates":[{"content":{"parts":[{"text":"Hello"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":5,"totalTokenCount":5},"modelVersion":"gemini-2.0-flash","responseId":"pool-2"}`,
	`data: {"candidates":[{"content":{"parts":[{"text":" from the pool"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":4,"totalTokenCount":9},"modelVersion":"gemini-2.0-flash","responseId":"pool-2"}`,
}

func geminiOK(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, ":generateContent"):
		reply(http.StatusOK, geminiResponse)(w, r)
	case strings.HasSuffix(r.URL.Path, ":streamGenerateContent") && r.URL.Query().Get("alt") == "sse":
		writeSSE(w, geminiChunks...)
	default:
		reply(http.StatusNotFound, `{"error":{"code":404,"message":"Not found","status":"NOT_FOUND"}}`)(w, r)
	}
}

var (
	geminiRevoked      = reply(http.StatusBadRequest, geminiInvalidKey)
	geminiLimited      = reply(http.StatusTooManyRequests, geminiPerMinute)
	geminiLimitedShort = reply(http.StatusTooManyRequests, geminiPerMinuteShort)
	geminiDailyQuota   = reply(http.StatusTooManyRequests, geminiPerDay)
	geminiStorm        = reply(http.StatusServiceUnavailable, geminiUnavailable)
)

func newGeminiServer(t *testing.T) *upstream {
	return newUpstream(t, geminiWire, geminiRevoked)
}

func newGenAIClient(t *testing.T, u *upstream, pool *credpool.Transport, retry *genai.HTTPRetryOptions) *genai.Client {
	t.Helper()
	client, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey:      placeholder,
		Backend:     genai.BackendGeminiAPI,
		HTTPClient:  &http.Client{Transport: pool},
		HTTPOptions: genai.HTTPOptions{BaseURL: u.url() + "/", RetryOptions: retry},
	})
	require.NoError(t, err)
	return client
}

const geminiModel = "gemini-2.0-flash"

func TestGenAIPlainCall(t *testing.T) {
	u := newGeminiServer(t)
	for _, k := range geminiKeys {
		u.script(k, geminiOK)
	}
	pool := newPool(t, geminiKeys, credpool.Gemini())
	client := newGenAIClient(t, u, pool, nil)

	for range 2 {
		res, err := client.Models.GenerateContent(context.Background(), geminiModel, genai.Text("Say hello"), nil)
		require.NoError(t, err)
		assert.Equal(t, "Hello from the pool", res.Text())
	}
	assert.Equal(t, geminiKeys, u.keysSent())
	for _, h := range u.recorded() {
		assert.Equal(t, "/v1beta/models/"+geminiModel+":generateContent", h.path)
	}
	u.assertOnlyPoolKeys(t, geminiKeys)
}

func TestGenAIStream(t *testing.T) {
	u := newGeminiServer(t)
	held := newHeldStream()
	u.script(geminiKeys[0], geminiRevoked)
	u.script(geminiKeys[1], held.serve(geminiChunks...))
	pool := newPool(t, geminiKeys, credpool.Gemini())
	client := newGenAIClient(t, u, pool, nil)

	var deltas []string
	for res, err := range client.Models.GenerateContentStream(context.Background(), geminiModel, genai.Text("Say hello"), nil) {
		require.NoError(t, err)
		held.received()
		deltas = append(deltas, res.Text())
	}

	assert.Equal(t, []string{"Hello", " from the pool"}, deltas)
	assert.Equal(t, geminiKeys, u.keysSent())
	for _, h := range u.recorded() {
		assert.Equal(t, "/v1beta/models/"+geminiModel+":streamGenerateContent", h.path)
		assert.Equal(t, "sse", h.query.Get("alt"))
	}
	u.assertOnlyPoolKeys(t, geminiKeys)
	requireKey(t, pool, 0, credpool.StateDead, credpool.ReasonAuthPermanent)
}

func TestGenAIKeyFailures(t *testing.T) {
	tests := []keyFailure{
		{"400 API_KEY_INVALID kills the key", geminiRevoked, credpool.StateDead, credpool.ReasonAuthPermanent, 0},
		{"429 RESOURCE_EXHAUSTED per minute cools it for RetryInfo's delay", geminiLimited, credpool.StateExhausted, credpool.ReasonRateLimit, 47 * time.Second},
		{"429 RESOURCE_EXHAUSTED per day cools it for an hour", geminiDailyQuota, credpool.StateExhausted, credpool.ReasonBilling, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newGeminiServer(t)
			u.script(geminiKeys[0], tt.first)
			u.script(geminiKeys[1], geminiOK)
			pool := newPool(t, geminiKeys, credpool.Gemini())
			client := newGenAIClient(t, u, pool, nil)

			res, err := client.Models.GenerateContent(context.Background(), geminiModel, genai.Text("Say hello"), nil)
			require.NoError(t, err)
			assert.Equal(t, "Hello from the pool", res.Text())
			assert.Equal(t, geminiKeys, u.keysSent())

			tt.assertFailedOver(t, pool)

			_, err = client.Models.GenerateContent(context.Background(), geminiModel, genai.Text("Say hello"), nil)
			require.NoError(t, err)
			assert.Equal(t, []string{geminiKeys[0], geminiKeys[1], geminiKeys[1]}, u.keysSent())
			u.assertOnlyPoolKeys(t, geminiKeys)
		})
	}
}

// TestGenAIRetriesCombine counts what reaches the provider for one call when
// every key fails, with genai's retries off (its default) and on. The delays
// are shortened for the test; genai's own are 1 s to 60 s.
func TestGenAIRetriesCombine(t *testing.T) {
	fast := func(attempts int32) *genai.HTTPRetryOptions {
		o := &genai.HTTPRetryOptions{InitialDelay: genai.Ptr(0.001), MaxDelay: genai.Ptr(0.001), Jitter: genai.Ptr(0.0)}
		if attempts > 0 {
			o.Attempts = genai.Ptr(attempts)
		}
		return o
	}
	tests := []struct {
		name     string
		every    http.HandlerFunc
		retry    *genai.HTTPRetryOptions
		attempts int
		noKeys   bool
		status   int
	}{
		{"503 storm, RetryOptions nil (default)", geminiStorm, nil, 4, false, 503},
		{"503 storm, Attempts 2", geminiStorm, fast(2), 8, false, 503},
		{"503 storm, RetryOptions set, Attempts default (5)", geminiStorm, fast(0), 20, false, 503},
		{"429 per minute everywhere, RetryOptions nil", geminiLimitedShort, nil, 6, false, 429},
		{"429 per minute everywhere, Attempts 2", geminiLimitedShort, fast(2), 12, false, 429},
		{"daily quota gone, RetryOptions nil", geminiDailyQuota, nil, 2, false, 429},
		{"daily quota gone, Attempts 2", geminiDailyQuota, fast(2), 2, true, 0},
		{"all keys invalid, Attempts 2", geminiRevoked, fast(2), 2, false, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newGeminiServer(t)
			for _, k := range geminiKeys {
				u.script(k, tt.every)
			}
			pool := newPool(t, geminiKeys, credpool.Gemini())
			client := newGenAIClient(t, u, pool, tt.retry)

			_, err := client.Models.GenerateContent(context.Background(), geminiModel, genai.Text("Say hello"), nil)
			require.Error(t, err)
			assert.Len(t, u.recorded(), tt.attempts)
			if tt.noKeys {
				assert.ErrorIs(t, err, credpool.ErrNoKeys)
			} else {
				var apiErr genai.APIError
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, tt.status, apiErr.Code)
			}
			u.assertOnlyPoolKeys(t, geminiKeys)
		})
	}
}
