package credpool

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
)

// errorInfo is what an error body says, in the form the classifier matches
// against. Codes and messages are lower case.
type errorInfo struct {
	codes      []string // code, type, status and reason fields, details reasons
	message    string   // every human message, joined
	bare       string   // the message, when it is nothing but a code ("token_revoked")
	field      bool     // the body names a field of the request at fault: Google's fieldViolations
	quotaIDs   []string // Gemini QuotaFailure violations
	retryDelay string   // Gemini RetryInfo.retryDelay, e.g. "47s"
	reset      string   // a reset time in the body: OpenRouter metadata, resets_at
	wait       string   // seconds to wait, in the body: resets_in_seconds, retry_after
	html       bool     // a gateway or CDN page, not the API's own answer
}

// wireError holds the fields providers put in an error object. Fields whose
// type providers disagree on are raw: OpenRouter's code is a number, OpenAI's
// a string or null, xAI's error a string, Google's details a list of objects.
type wireError struct {
	Code     json.RawMessage `json:"code"`
	Type     json.RawMessage `json:"type"`
	Status   json.RawMessage `json:"status"`
	Reason   json.RawMessage `json:"reason"`
	Message  json.RawMessage `json:"message"`
	Error    json.RawMessage `json:"error"`             // nested object, or a flat message (xAI)
	Detail   json.RawMessage `json:"detail"`            // FastAPI style (Mistral)
	Desc     json.RawMessage `json:"error_description"` // OAuth 2.0 (RFC 6749)
	Details  json.RawMessage `json:"details"`
	Metadata json.RawMessage `json:"metadata"`
	ResetsAt json.RawMessage `json:"resets_at"`
	ResetAt  json.RawMessage `json:"reset_at"`
	ResetsIn json.RawMessage `json:"resets_in_seconds"` // ChatGPT's usage_limit_reached
	Retry    json.RawMessage `json:"retry_after"`       // seconds, in the body
}

// wireDetail is one entry of google.rpc.Status details.
type wireDetail struct {
	Reason     string `json:"reason"`
	RetryDelay string `json:"retryDelay"`
	Violations []struct {
		QuotaID string `json:"quotaId"`
	} `json:"violations"`
	FieldViolations []json.RawMessage `json:"fieldViolations"` // google.rpc.BadRequest
}

// wireMetadata is OpenRouter's error metadata: the upstream's raw message and
// the rate-limit headers of the limit that was hit.
type wireMetadata struct {
	Raw     json.RawMessage            `json:"raw"`
	Headers map[string]json.RawMessage `json:"headers"`
}

// parseError reads an error body once. JSON bodies give their fields, the
// nested error object first; an HTML page is marked as such; anything else
// (plain text, truncated JSON) is taken whole as the message.
func parseError(body []byte) errorInfo {
	var info errorInfo
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' { // Google's streaming endpoints: a list of one error
		var list []json.RawMessage
		if json.Unmarshal(trimmed, &list) == nil && len(list) > 0 {
			trimmed = bytes.TrimSpace(list[0])
		}
	}
	var w wireError
	if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &w) != nil {
		info.html = len(trimmed) > 0 && trimmed[0] == '<'
		info.message = decodeMessage(string(trimmed))
		return info
	}
	var msgs []string
	var inner wireError
	if len(w.Error) > 0 && w.Error[0] == '{' && json.Unmarshal(w.Error, &inner) == nil {
		msgs = inner.collect(&info, msgs)
	}
	msgs = w.collect(&info, msgs)
	info.message = decodeMessage(strings.Join(msgs, " | "))
	if len(msgs) == 1 && isToken(msgs[0]) {
		info.bare = strings.ToLower(msgs[0])
	}
	return info
}

// collect adds what w says to info and returns msgs with w's messages added.
func (w *wireError) collect(info *errorInfo, msgs []string) []string {
	for _, raw := range [...]json.RawMessage{w.Code, w.Type, w.Status, w.Reason} {
		if s := scalar(raw); s != "" {
			info.codes = append(info.codes, strings.ToLower(s))
		}
	}
	for _, raw := range [...]json.RawMessage{w.Message, w.Error, w.Detail, w.Desc} {
		if s := scalar(raw); s != "" {
			msgs = append(msgs, s)
		}
	}
	if s := scalar(w.Error); isToken(s) {
		info.codes = append(info.codes, strings.ToLower(s)) // OAuth's "error":"invalid_grant"
	}
	var details []wireDetail
	if json.Unmarshal(w.Details, &details) == nil {
		for _, d := range details {
			if d.Reason != "" {
				info.codes = append(info.codes, strings.ToLower(d.Reason))
			}
			if d.RetryDelay != "" {
				info.retryDelay = d.RetryDelay
			}
			for _, v := range d.Violations {
				info.quotaIDs = append(info.quotaIDs, v.QuotaID)
			}
			info.field = info.field || len(d.FieldViolations) > 0
		}
	}
	var meta wireMetadata
	if json.Unmarshal(w.Metadata, &meta) == nil {
		if s := scalar(meta.Raw); s != "" {
			msgs = append(msgs, s)
		}
		for k, v := range meta.Headers {
			if strings.EqualFold(k, "X-RateLimit-Reset") {
				info.reset = scalar(v)
			}
		}
	}
	for _, raw := range [...]json.RawMessage{w.ResetsAt, w.ResetAt} {
		if s := scalar(raw); s != "" {
			info.reset = s
		}
	}
	for _, raw := range [...]json.RawMessage{w.ResetsIn, w.Retry} {
		if s := scalar(raw); s != "" {
			info.wait = s
		}
	}
	return msgs
}

// isToken reports whether s looks like a machine-readable code, such as
// "invalid_grant", rather than a sentence.
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '_' || c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// decodeMessage lower-cases a message and undoes URL encoding, which xAI
// applies to its error text ("Incorrect%20API%20key").
func decodeMessage(s string) string {
	if strings.Contains(s, "%20") {
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
	}
	return strings.ToLower(s)
}

// scalar returns a JSON string's value or a number's text; "" for anything
// else (null, objects, arrays, bad JSON).
func scalar(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return string(raw)
	}
	return ""
}

// hasCode reports whether any of the body's codes is one of codes.
func (info *errorInfo) hasCode(codes ...string) bool {
	for _, c := range info.codes {
		for _, want := range codes {
			if c == want {
				return true
			}
		}
	}
	return false
}

// dailyQuota reports whether a Gemini quota violation is per day, which is
// quota, not a rate limit.
func (info *errorInfo) dailyQuota() bool {
	for _, id := range info.quotaIDs {
		if strings.Contains(strings.ToLower(id), "perday") {
			return true
		}
	}
	return false
}
