package integration_test

// github.com/sashabaranov/go-openai with credpool.
//
// Recommended SDK retry setting: nothing to set. go-openai makes exactly one
// HTTP request per call and has no retries of its own, so credpool's rotation
// and backoff are all the retrying there is: TestGoOpenAIRetries measures 4
// upstream attempts for one call during a 503 storm (credpool's
// 1 + WithMaxRetries) and 6 during a rate limit on every key (keys +
// WithMaxRetries + 1). Do not wrap the client in a retry loop of your own.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/credpool/credpool"
	goopenai "github.com/sashabaranov/go-openai"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newGoOpenAIClient(u *upstream, pool *credpool.Transport) *goopenai.Client {
	cfg := goopenai.DefaultConfig(placeholder)
	cfg.BaseURL = u.url() + "/v1"
	cfg.HTTPClient = &http.Client{Transport: pool}
	return goopenai.NewClientWithConfig(cfg)
}

var goOpenAIRequest = goopenai.ChatCompletionRequest{
	Model:    goopenai.GPT4oMini,
	Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Say hello"}},
}

func TestGoOpenAIPlainCall(t *testing.T) {
	u := newOpenAIServer(t)
	for _, k := range openAIKeys {
		u.script(k, openAIOK)
	}
	pool := newPool(t, openAIKeys)
	client := newGoOpenAIClient(u, pool)

	for range 2 {
		res, err := client.CreateChatCompletion(context.Background(), goOpenAIRequest)
		require.NoError(t, err)
		assert.Equal(t, "Hello from the pool", res.Choices[0].Message.Content)
	}
	assert.Equal(t, openAIKeys, u.keysSent())
	u.assertOnlyPoolKeys(t, openAIKeys)
}

func TestGoOpenAIStream(t *testing.T) {
	u := newOpenAIServer(t)
	held := newHeldStream()
	u.script(openAIKeys[0], openAIRevoked)
	u.script(openAIKeys[1], held.serve(openAIChunks...))
	pool := newPool(t, openAIKeys)
	client := newGoOpenAIClient(u, pool)

	req := goOpenAIRequest
	req.Stream = true
	stream, err := client.CreateChatCompletionStream(context.Background(), req)
	require.NoError(t, err)
	defer stream.Close()
	var deltas []string
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		held.received()
		if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
			deltas = append(deltas, chunk.Choices[0].Delta.Content)
		}
	}

	assert.Equal(t, []string{"Hello", " from the pool"}, deltas)
	assert.Equal(t, openAIKeys, u.keysSent())
	u.assertOnlyPoolKeys(t, openAIKeys)
	requireKey(t, pool, 0, credpool.StateDead, credpool.ReasonAuthPermanent)
}

func TestGoOpenAIKeyFailures(t *testing.T) {
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
			client := newGoOpenAIClient(u, pool)

			res, err := client.CreateChatCompletion(context.Background(), goOpenAIRequest)
			require.NoError(t, err)
			assert.Equal(t, "Hello from the pool", res.Choices[0].Message.Content)
			assert.Equal(t, openAIKeys, u.keysSent())

			tt.assertFailedOver(t, pool)

			_, err = client.CreateChatCompletion(context.Background(), goOpenAIRequest)
			require.NoError(t, err)
			assert.Equal(t, []string{openAIKeys[0], openAIKeys[1], openAIKeys[1]}, u.keysSent())
			u.assertOnlyPoolKeys(t, openAIKeys)
		})
	}
}

// TestGoOpenAIRetries counts what reaches the provider for one call when
// every key fails: credpool's attempts only, since go-openai does not retry.
func TestGoOpenAIRetries(t *testing.T) {
	tests := []struct {
		name     string
		every    http.HandlerFunc
		attempts int
		status   int
		code     string
	}{
		{"503 storm", openAIStorm, 4, 503, "server_is_overloaded"},
		{"429 everywhere", openAILimitedShort, 6, 429, "rate_limit_exceeded"},
		{"quota gone", openAINoQuota, 2, 429, "insufficient_quota"},
		{"all revoked", openAIRevoked, 2, 401, "invalid_api_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newOpenAIServer(t)
			for _, k := range openAIKeys {
				u.script(k, tt.every)
			}
			pool := newPool(t, openAIKeys)
			client := newGoOpenAIClient(u, pool)

			_, err := client.CreateChatCompletion(context.Background(), goOpenAIRequest)
			var apiErr *goopenai.APIError
			require.ErrorAs(t, err, &apiErr, "the provider's error reaches the caller intact")
			assert.Equal(t, tt.status, apiErr.HTTPStatusCode)
			assert.Equal(t, tt.code, apiErr.Code)
			assert.Len(t, u.recorded(), tt.attempts)
			u.assertOnlyPoolKeys(t, openAIKeys)
		})
	}
}
