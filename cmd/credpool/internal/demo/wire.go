// wire.go has what the simulated providers say, in OpenAI's wire format,
// and the helpers both use to read requests and write answers.

package demo

import (
	"encoding/json"
	"io"
	"net/http"
)

// The providers' bodies, in OpenAI's wire format.
const (
	revokedBody   = `{"error":{"message":"Incorrect API key provided: sk-dem***. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`
	noQuotaBody   = `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`
	rateLimitBody = `{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-demo on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	// dayRateLimitBody leaves out the "Please try again in 1s" of the
	// real one: credpool reads such words as a wait, in real seconds, and the
	// day's Retry-After header is on the sped-up clock.
	dayRateLimitBody  = `{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-demo on requests per min (RPM): Limit 20, Used 20, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	overloadedBody    = `{"error":{"message":"The server is overloaded","type":"server_error"}}`
	badRequestBody    = `{"error":{"message":"'messages' is a required property","type":"invalid_request_error","param":"messages","code":null}}`
	completionBody    = `{"id":"chatcmpl-demo-%d","object":"chat.completion","created":%d,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the simulated provider!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":6,"total_tokens":18}}`
	dayCompletionBody = `{"id":"chatcmpl-demo","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the simulated day!"},"finish_reason":"stop"}]}`
	chatRequestBody   = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to request %d"}]}`
)

// validChat reports whether body is a chat completion request with a model
// and at least one message.
func validChat(body io.Reader) bool {
	var req struct {
		Model    string            `json:"model"`
		Messages []json.RawMessage `json:"messages"`
	}
	return json.NewDecoder(body).Decode(&req) == nil && req.Model != "" && len(req.Messages) > 0
}

func writeBody(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}
