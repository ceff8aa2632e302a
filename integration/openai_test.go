package integration_test

// github.com/openai/openai-go/v3 with credpool.
//
// Recommended SDK retry setting: option.WithMaxRetries(0), or 1 at most.
// credpool already replays a request on another key at once when a key is
// revoked, rate limited or out of quota, and backs off on 5xx
// (4 attempts: WithMaxRetries, 3 by default). The SDK's default of 2 retries wraps all of
// that three times over: TestOpenAIRetriesCombine measures 12 upstream
// attempts for one call during a 503 storm (4 with retries off) and 18 during
// a rate limit on every key (6 with retries off); and once every key is out
// of quota, the SDK's retries sleep (about 1.3 s with its default delays)
// only to turn the provider's 429 insufficient_quota into credpool.ErrNoKeys,
// without reaching the provider again. With every default (credpool's
// backoff, the SDK's 2 retries and its delays), a 503 storm costs 12
// requests and about 5 s before the caller hears of it.

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var openAIKeys = []string{"sk-proj-pool-key-zero-Aa00", "sk-proj-pool-key-one-Bb11"}

// OpenAI's real error bodies (see /work/shared/reference/provider-errors.md).
const (
	openAIInvalidKey = `{"error":{"message":"Incorrect API key provided: sk-VKMIs***wjh3. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`
	openAIQuota      = `{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`
	openAIRateLimit  = `{"error":{"message":"Rate limit reached for gpt-4 in organization org-abc123 on tokens per min (TPM): Limit 10000, Used 9348, Requested 5086. Please try again in 26.604s. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`
	// The same limit on requests per minute, with a reset short enough for a test.
	openAIRateLimitShort = `{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-abc123 on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20ms. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	openAIOverloaded     = `{"error":{"message":"Our servers are currently overloaded. Please try again later.","type":"service_unavailable_error","param":null,"code":"server_is_overloaded"}}`

	openAICompletion = `{"id":"chatcmpl-pool","object":"chat.completion","created":1741569952,"model":"gpt-5.4-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the pool","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9},"service_tier":"default","system_fingerprint":"fp_pool"}`
)

// openAIChunks is a chat completion stream, as OpenAI sends it.
var openAIChunks = []string{
	`data: {"id":"chatcmpl-pool","object":"chat.completion.chunk","created":1741569952,"model":"gpt-5.4-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
	`data: {"id":"chatcmpl-pool","object":"chat.completion.chunk","created":1741569952,"model":"gpt-5.4-mini","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}`,
	`data: {"id":"chatcmpl-pool","object":"chat.completion.chunk","created":1741569952,"model":"gpt-5.4-mini","choices":[{"index":0,"delta":{"content":" from the pool"},"logprobs":null,"finish_reason":null}]}`,
	`data: {"id":"chatcmpl-pool","object":"chat.completion.chunk","created":1741569952,"model":"gpt-5.4-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
	`data: [DONE]`,
}

// openAIOK answers a chat completion, streamed or not, with the rate-limit
// headers OpenAI sends on a success.
func openAIOK(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Ratelimit-Limit-Requests", "500")
	w.Header().Set("X-Ratelimit-Remaining-Requests", "499")
	w.Header().Set("X-Ratelimit-Reset-Requests", "120ms")
	if r.URL.Path != "/v1/chat/completions" {
		reply(http.StatusNotFound, `{"error":{"message":"Invalid URL","type":"invalid_request_error","param":null,"code":null}}`)(w, r)
		return
	}
	if wantsStream(r) {
		writeSSE(w, openAIChunks...)
		return
	}
	reply(http.StatusOK, openAICompletion)(w, r)
}

var (
	openAIRevoked = reply(http.StatusUnauthorized, openAIInvalidKey)
	openAINoQuota = reply(http.StatusTooManyRequests, openAIQuota)
	// A token-per-minute limit, with every header OpenAI sends on one.
	openAILimited = reply(http.StatusTooManyRequests, openAIRateLimit,
		"Retry-After", "27",
		"X-Ratelimit-Limit-Requests", "500", "X-Ratelimit-Remaining-Requests", "499", "X-Ratelimit-Reset-Requests", "120ms",
		"X-Ratelimit-Limit-Tokens", "10000", "X-Ratelimit-Remaining-Tokens", "0", "X-Ratelimit-Reset-Tokens", "26.604s")
	openAILimitedShort = reply(http.StatusTooManyRequests, openAIRateLimitShort,
		"Retry-After-Ms", "20",
		"X-Ratelimit-Limit-Requests", "3", "X-Ratelimit-Remaining-Requests", "0", "X-Ratelimit-Reset-Requests", "20ms")
	openAIStorm = reply(http.StatusServiceUnavailable, openAIOverloaded)
)

// newOpenAIServer is an OpenAI whose keys answer as scripted; any other key
// (the placeholder) is rejected as OpenAI rejects it.
func newOpenAIServer(t *testing.T) *upstream {
	return newUpstream(t, bearerWire, openAIRevoked)
}

// newOpenAIClient is the SDK as a service would build it, changed only in its
// HTTP client; opts add to it.
func newOpenAIClient(u *upstream, pool *credpool.Transport, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(u.url() + "/v1/"),
		option.WithHTTPClient(&http.Client{Transport: pool}),
		option.WithAPIKey(placeholder),
	}, opts...)...)
}

var openAIParams = openai.ChatCompletionNewParams{
	Model:    openai.ChatModelGPT5_4Mini,
	Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
}

func TestOpenAIPlainCall(t *testing.T) {
	u := newOpenAIServer(t)
	for _, k := range openAIKeys {
		u.script(k, openAIOK)
	}
	pool := newPool(t, openAIKeys)
	client := newOpenAIClient(u, pool)

	for range 2 {
		res, err := client.Chat.Completions.New(context.Background(), openAIParams)
		require.NoError(t, err)
		assert.Equal(t, "Hello from the pool", res.Choices[0].Message.Content)
	}

	assert.Equal(t, openAIKeys, u.keysSent(), "round robin over the pool, one request each")
	u.assertOnlyPoolKeys(t, openAIKeys)
	for i := range openAIKeys {
		s := requireKey(t, pool, i, credpool.StateOK, "")
		assert.EqualValues(t, 499, s.Remaining, "steering read x-ratelimit-remaining-requests through the SDK")
	}
}

func TestOpenAIStream(t *testing.T) {
	u := newOpenAIServer(t)
	held := newHeldStream()
	u.script(openAIKeys[0], openAIRevoked) // the stream starts on the second key
	u.script(openAIKeys[1], held.serve(openAIChunks...))
	pool := newPool(t, openAIKeys)
	client := newOpenAIClient(u, pool)

	stream := client.Chat.Completions.NewStreaming(context.Background(), openAIParams)
	var acc openai.ChatCompletionAccumulator
	var deltas []string
	for stream.Next() {
		held.received()
		chunk := stream.Current()
		acc.AddChunk(chunk)
		if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
			deltas = append(deltas, chunk.Choices[0].Delta.Content)
		}
	}
	require.NoError(t, stream.Err())
	require.NoError(t, stream.Close())

	assert.Equal(t, []string{"Hello", " from the pool"}, deltas, "chunks arrive one by one")
	assert.Equal(t, "Hello from the pool", acc.Choices[0].Message.Content)
	assert.Equal(t, openAIKeys, u.keysSent())
	u.assertOnlyPoolKeys(t, openAIKeys)
	requireKey(t, pool, 0, credpool.StateDead, credpool.ReasonAuthPermanent)
}

// TestOpenAIKeyFailures: the first key fails; the call succeeds on the second
// and the first key leaves rotation as the error says. The SDK keeps its
// default retries: credpool answers with the success, so it never retries.
func TestOpenAIKeyFailures(t *testing.T) {
	tests := []keyFailure{
		{"401 invalid_api_key kills the key", openAIRevoked, credpool.StateDead, credpool.ReasonAuthPermanent, 0},
		{"429 rate_limit_exceeded cools it until retry-after", openAILimited, credpool.StateExhausted, credpool.ReasonRateLimit, 27 * time.Second},
		{"429 insufficient_quota cools it for an hour", openAINoQuota, credpool.StateExhausted, credpool.ReasonBilling, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newOpenAIServer(t)
			u.script(openAIKeys[0], tt.first)
			u.script(openAIKeys[1], openAIOK)
			pool := newPool(t, openAIKeys)
			client := newOpenAIClient(u, pool)

			res, err := client.Chat.Completions.New(context.Background(), openAIParams)
			require.NoError(t, err)
			assert.Equal(t, "Hello from the pool", res.Choices[0].Message.Content)
			assert.Equal(t, openAIKeys, u.keysSent(), "replayed at once on the second key")
			assert.Equal(t, map[string]int{"0": 2}, u.sdkAttempts(), "both attempts inside the SDK's first")

			tt.assertFailedOver(t, pool)

			// The failed key stays out: the next calls all go to the second.
			for range 2 {
				_, err := client.Chat.Completions.New(context.Background(), openAIParams)
				require.NoError(t, err)
			}
			assert.Equal(t, append([]string{openAIKeys[0]}, repeat(openAIKeys[1], 3)...), u.keysSent())
			u.assertOnlyPoolKeys(t, openAIKeys)
		})
	}
}

// TestOpenAIRetriesCombine counts what reaches the provider for one call when
// every key fails, with the SDK's default retries (2) and with fewer.
// WithMaxRetryDelay only shortens the SDK's sleeps (0.5 s, 1 s by default)
// for the test; it does not change how many retries the SDK makes.
func TestOpenAIRetriesCombine(t *testing.T) {
	tests := []struct {
		name    string
		every   http.HandlerFunc
		retries int            // -1: the SDK's default
		bySDK   map[string]int // requests the provider gets, by the SDK's attempt number
		noKeys  bool
		status  int // of the *openai.Error, when the provider's error reaches the caller
	}{
		// 503: credpool makes 1 + WithMaxRetries (3) attempts per SDK attempt.
		{"503 storm, SDK default retries", openAIStorm, -1, map[string]int{"0": 4, "1": 4, "2": 4}, false, 503},
		{"503 storm, SDK 1 retry", openAIStorm, 1, map[string]int{"0": 4, "1": 4}, false, 503},
		{"503 storm, SDK retries off", openAIStorm, 0, map[string]int{"0": 4}, false, 503},
		// 429 on every key: credpool rotates, waits out the cooldowns (20 ms,
		// doubling each time a key fails its first request back: strikes),
		// and stops at keys + WithMaxRetries + 1 (2 + 4) attempts per SDK attempt.
		{"429 everywhere, SDK default retries", openAILimitedShort, -1, map[string]int{"0": 6, "1": 6, "2": 6}, false, 429},
		{"429 everywhere, SDK 1 retry", openAILimitedShort, 1, map[string]int{"0": 6, "1": 6}, false, 429},
		{"429 everywhere, SDK retries off", openAILimitedShort, 0, map[string]int{"0": 6}, false, 429},
		// Out of quota: each key is tried once and cools for an hour. The
		// SDK's retries find no key and get ErrNoKeys instead of the 429.
		{"quota gone, SDK default retries", openAINoQuota, -1, map[string]int{"0": 2}, true, 0},
		{"quota gone, SDK retries off", openAINoQuota, 0, map[string]int{"0": 2}, false, 429},
		// Revoked everywhere: the SDK does not retry a 401.
		{"all revoked, SDK default retries", openAIRevoked, -1, map[string]int{"0": 2}, false, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newOpenAIServer(t)
			for _, k := range openAIKeys {
				u.script(k, tt.every)
			}
			pool := newPool(t, openAIKeys)
			opts := []option.RequestOption{option.WithMaxRetryDelay(50 * time.Millisecond)}
			if tt.retries >= 0 {
				opts = append(opts, option.WithMaxRetries(tt.retries))
			}
			client := newOpenAIClient(u, pool, opts...)

			start := time.Now()
			_, err := client.Chat.Completions.New(context.Background(), openAIParams)
			require.Error(t, err)
			assert.Less(t, time.Since(start), 10*time.Second, "a key that fails each probe cools twice as long each time, so the waits add up, but stay bounded")

			assert.Equal(t, tt.bySDK, u.sdkAttempts(), "requests the provider got, by SDK attempt")
			var apiErr *openai.Error
			if tt.noKeys {
				assert.ErrorIs(t, err, credpool.ErrNoKeys)
				assert.False(t, errors.As(err, &apiErr), "the provider's error is lost: %v", err)
			} else {
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, tt.status, apiErr.StatusCode)
			}
			assert.False(t, strings.Contains(err.Error(), openAIKeys[0]) || strings.Contains(err.Error(), openAIKeys[1]), "a key in the error")
			u.assertOnlyPoolKeys(t, openAIKeys)
		})
	}
}
