package integration_test

// github.com/anthropics/anthropic-sdk-go/v2 with credpool.
//
// Recommended SDK retry setting: option.WithMaxRetries(0), or 1 at most.
// credpool already replays a request on another key at once when a key is
// revoked, rate limited or out of credit, and backs off on 529 and 5xx
// (4 attempts: WithMaxRetries, 3 by default). The SDK's default of 2 retries wraps all
// of that three times over: TestAnthropicRetriesCombine measures 12 upstream
// attempts for one call during a 529 storm (4 with retries off) and 18 during
// a rate limit on every key (6 with retries off). anthropic-sdk-go has no
// option to shorten its own backoff (0.5 s, 1 s, ... up to 8 s) and honours
// any Retry-After the server sends without a cap, so its retries also add
// seconds of sleep on top of credpool's.
//
// anthropic-sdk-go v2 (API version 2026-10-21) sends WithAPIKey as
// "Authorization: Bearer", where v1 sent X-Api-Key. credpool.Anthropic()
// drops that placeholder Authorization header and sends the pool's key in
// X-Api-Key, which is what these tests assert.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/credpool/credpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var anthropicKeys = []string{"sk-ant-api03-pool-key-zero-Cc22", "sk-ant-api03-pool-key-one-Dd33"}

// Anthropic's real error bodies (see /work/shared/reference/provider-errors.md).
const (
	anthropicInvalidKey = `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CYhr1kdGzCrPHfrhibMen"}`
	anthropicRateLimit  = `{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (5d3e8a1c-0000-4000-8000-000000000000) of 20,000 input tokens per minute. For details, refer to: https://docs.anthropic.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."},"request_id":"req_011CZ9x2pAbCdEfGhIjKlMnO"}`
	anthropicNoCredit   = `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."},"request_id":"req_011CbrFTcXhtiMzr3s6EocF7"}`
	anthropicOverloaded = `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CZAau32QzxDkriovTaFCB"}`

	anthropicMessage = `{"id":"msg_01PoolXyz","type":"message","role":"assistant","model":"claude-sonnet-5-5","content":[{"type":"text","text":"Hello from the pool"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":4}}`
)

// anthropicEvents is a Messages stream, as Anthropic sends it.
var anthropicEvents = []string{
	"event: message_start\n" + `data: {"type":"message_start","message":{"id":"msg_01PoolXyz","type":"message","role":"assistant","model":"claude-sonnet-5-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}`,
	"event: content_block_start\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
	"event: ping\n" + `data: {"type": "ping"}`,
	"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
	"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" from the pool"}}`,
	"event: content_block_stop\n" + `data: {"type":"content_block_stop","index":0}`,
	"event: message_delta\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":4}}`,
	"event: message_stop\n" + `data: {"type":"message_stop"}`,
}

// anthropicOK answers a message, streamed or not, with the rate-limit headers
// Anthropic sends on a success.
func anthropicOK(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Anthropic-Ratelimit-Requests-Limit", "50")
	w.Header().Set("Anthropic-Ratelimit-Requests-Remaining", "49")
	w.Header().Set("Anthropic-Ratelimit-Requests-Reset", time.Now().Add(time.Second).UTC().Format(time.RFC3339))
	w.Header().Set("Request-Id", "req_011PoolOk")
	if r.URL.Path != "/v1/messages" {
		reply(http.StatusNotFound, `{"type":"error","error":{"type":"not_found_error","message":"Not found"}}`)(w, r)
		return
	}
	if wantsStream(r) {
		writeSSE(w, anthropicEvents...)
		return
	}
	reply(http.StatusOK, anthropicMessage)(w, r)
}

var (
	anthropicRevoked = reply(http.StatusUnauthorized, anthropicInvalidKey)
	anthropicBroke   = reply(http.StatusBadRequest, anthropicNoCredit)
	// A 429 with the headers Anthropic sends on one: retry-after wins.
	anthropicLimited http.HandlerFunc = func(w http.ResponseWriter, r *http.Request) {
		reply(http.StatusTooManyRequests, anthropicRateLimit,
			"Retry-After", "17",
			"Anthropic-Ratelimit-Input-Tokens-Limit", "20000",
			"Anthropic-Ratelimit-Input-Tokens-Remaining", "0",
			"Anthropic-Ratelimit-Input-Tokens-Reset", time.Now().Add(45*time.Second).UTC().Format(time.RFC3339),
		)(w, r)
	}
	// Test-only short waits: the SDK honours retry-after-ms, and has no
	// option of its own to shorten its backoff.
	anthropicLimitedShort = reply(http.StatusTooManyRequests, anthropicRateLimit, "Retry-After-Ms", "20")
	anthropicStorm        = reply(529, anthropicOverloaded, "Retry-After-Ms", "1")
)

func newAnthropicServer(t *testing.T) *upstream {
	return newUpstream(t, anthropicWire, anthropicRevoked)
}

func newAnthropicClient(u *upstream, pool *credpool.Transport, opts ...option.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]option.RequestOption{
		option.WithBaseURL(u.url()),
		option.WithHTTPClient(&http.Client{Transport: pool}),
		option.WithAPIKey(placeholder),
	}, opts...)...)
}

var anthropicParams = anthropic.MessageNewParams{
	Model:     anthropic.Model("claude-sonnet-5-5"),
	MaxTokens: 64,
	Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))},
}

// assertNoAuthorization checks that the SDK's placeholder Authorization
// header was dropped, not just overwritten.
func assertNoAuthorization(t *testing.T, u *upstream) {
	t.Helper()
	for i, h := range u.recorded() {
		assert.Empty(t, h.header.Values("Authorization"), "request %d still has an Authorization header", i)
	}
}

func messageText(m *anthropic.Message) string {
	var b strings.Builder
	for _, c := range m.Content {
		b.WriteString(c.Text)
	}
	return b.String()
}

func TestAnthropicPlainCall(t *testing.T) {
	u := newAnthropicServer(t)
	for _, k := range anthropicKeys {
		u.script(k, anthropicOK)
	}
	pool := newPool(t, anthropicKeys, credpool.Anthropic())
	client := newAnthropicClient(u, pool)

	for range 2 {
		msg, err := client.Messages.New(context.Background(), anthropicParams)
		require.NoError(t, err)
		assert.Equal(t, "Hello from the pool", messageText(msg))
	}

	assert.Equal(t, anthropicKeys, u.keysSent())
	u.assertOnlyPoolKeys(t, anthropicKeys)
	assertNoAuthorization(t, u)
	for i := range anthropicKeys {
		s := requireKey(t, pool, i, credpool.StateOK, "")
		assert.EqualValues(t, 49, s.Remaining, "steering read anthropic-ratelimit-requests-remaining")
	}
}

func TestAnthropicStream(t *testing.T) {
	u := newAnthropicServer(t)
	held := newHeldStream()
	u.script(anthropicKeys[0], anthropicRevoked)
	u.script(anthropicKeys[1], held.serve(anthropicEvents...))
	pool := newPool(t, anthropicKeys, credpool.Anthropic())
	client := newAnthropicClient(u, pool)

	stream := client.Messages.NewStreaming(context.Background(), anthropicParams)
	var msg anthropic.Message
	var deltas []string
	for stream.Next() {
		held.received()
		event := stream.Current()
		require.NoError(t, msg.Accumulate(event))
		if d, ok := event.AsAny().(anthropic.ContentBlockDeltaEvent); ok {
			deltas = append(deltas, d.Delta.Text)
		}
	}
	require.NoError(t, stream.Err())
	require.NoError(t, stream.Close())

	assert.Equal(t, []string{"Hello", " from the pool"}, deltas)
	assert.Equal(t, "Hello from the pool", messageText(&msg))
	assert.Equal(t, anthropicKeys, u.keysSent())
	u.assertOnlyPoolKeys(t, anthropicKeys)
	assertNoAuthorization(t, u)
	requireKey(t, pool, 0, credpool.StateDead, credpool.ReasonAuthPermanent)
}

// TestAnthropicKeyFailures: the first key fails; the call succeeds on the
// second with the SDK's default retries, which never fire.
func TestAnthropicKeyFailures(t *testing.T) {
	tests := []keyFailure{
		{"401 authentication_error kills the key", anthropicRevoked, credpool.StateDead, credpool.ReasonAuthPermanent, 0},
		{"429 rate_limit_error cools it until retry-after", anthropicLimited, credpool.StateExhausted, credpool.ReasonRateLimit, 17 * time.Second},
		{"400 credit balance too low cools it for an hour", anthropicBroke, credpool.StateExhausted, credpool.ReasonBilling, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newAnthropicServer(t)
			u.script(anthropicKeys[0], tt.first)
			u.script(anthropicKeys[1], anthropicOK)
			pool := newPool(t, anthropicKeys, credpool.Anthropic())
			client := newAnthropicClient(u, pool)

			msg, err := client.Messages.New(context.Background(), anthropicParams)
			require.NoError(t, err)
			assert.Equal(t, "Hello from the pool", messageText(msg))
			assert.Equal(t, anthropicKeys, u.keysSent())
			assert.Equal(t, map[string]int{"0": 2}, u.sdkAttempts(), "both attempts inside the SDK's first")

			tt.assertFailedOver(t, pool)

			for range 2 {
				_, err := client.Messages.New(context.Background(), anthropicParams)
				require.NoError(t, err)
			}
			assert.Equal(t, append([]string{anthropicKeys[0]}, repeat(anthropicKeys[1], 3)...), u.keysSent())
			u.assertOnlyPoolKeys(t, anthropicKeys)
			assertNoAuthorization(t, u)
		})
	}
}

// TestAnthropicRetriesCombine counts what reaches the provider for one call
// when every key fails, with the SDK's default retries (2) and with fewer.
func TestAnthropicRetriesCombine(t *testing.T) {
	tests := []struct {
		name    string
		every   http.HandlerFunc
		retries int            // -1: the SDK's default
		bySDK   map[string]int // requests the provider gets, by the SDK's attempt number
		status  int
	}{
		{"529 storm, SDK default retries", anthropicStorm, -1, map[string]int{"0": 4, "1": 4, "2": 4}, 529},
		{"529 storm, SDK 1 retry", anthropicStorm, 1, map[string]int{"0": 4, "1": 4}, 529},
		{"529 storm, SDK retries off", anthropicStorm, 0, map[string]int{"0": 4}, 529},
		{"429 everywhere, SDK default retries", anthropicLimitedShort, -1, map[string]int{"0": 6, "1": 6, "2": 6}, 429},
		{"429 everywhere, SDK 1 retry", anthropicLimitedShort, 1, map[string]int{"0": 6, "1": 6}, 429},
		{"429 everywhere, SDK retries off", anthropicLimitedShort, 0, map[string]int{"0": 6}, 429},
		// Anthropic reports spent credit as a 400, which the SDK never retries.
		{"credit gone, SDK default retries", anthropicBroke, -1, map[string]int{"0": 2}, 400},
		{"credit gone, SDK retries off", anthropicBroke, 0, map[string]int{"0": 2}, 400},
		{"all revoked, SDK default retries", anthropicRevoked, -1, map[string]int{"0": 2}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newAnthropicServer(t)
			for _, k := range anthropicKeys {
				u.script(k, tt.every)
			}
			pool := newPool(t, anthropicKeys, credpool.Anthropic())
			var opts []option.RequestOption
			if tt.retries >= 0 {
				opts = append(opts, option.WithMaxRetries(tt.retries))
			}
			client := newAnthropicClient(u, pool, opts...)

			start := time.Now()
			_, err := client.Messages.New(context.Background(), anthropicParams)
			require.Error(t, err)
			assert.Less(t, time.Since(start), 10*time.Second, "a key that fails each probe cools twice as long each time, so the waits add up, but stay bounded")

			assert.Equal(t, tt.bySDK, u.sdkAttempts(), "requests the provider got, by SDK attempt")
			var apiErr *anthropic.Error
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tt.status, apiErr.StatusCode)
			for _, k := range anthropicKeys {
				assert.NotContains(t, err.Error(), k)
			}
			u.assertOnlyPoolKeys(t, anthropicKeys)
			assertNoAuthorization(t, u)
		})
	}
}
