package credpool

import (
	"bytes"
	"encoding/json"
	"strings"
)

// errorInfo is what an error body says, in the form the classifier matches
// against: every machine-readable token (code, type, status, reason) and the
// human message, all in lower case.
type errorInfo struct {
	codes   []string
	message string
}

// wireError holds the fields providers put in an error object. Every field is
// raw because providers disagree on types: OpenRouter's code is a number,
// OpenAI's a string or null, xAI's error a string.
type wireError struct {
	Code    json.RawMessage `json:"code"`
	Type    json.RawMessage `json:"type"`
	Status  json.RawMessage `json:"status"`
	Reason  json.RawMessage `json:"reason"`
	Message json.RawMessage `json:"message"`
	Error   json.RawMessage `json:"error"`  // nested object, or a flat message (xAI)
	Detail  json.RawMessage `json:"detail"` // FastAPI style (Mistral)
}

// parseError reads an error body once. JSON bodies give their fields, nested
// error object first; anything else (HTML, plain text, truncated JSON) is
// taken whole as the message.
func parseError(body []byte) errorInfo {
	var info errorInfo
	var w wireError
	if json.Unmarshal(body, &w) != nil {
		info.message = strings.ToLower(string(bytes.TrimSpace(body)))
		return info
	}
	var msgs []string
	var inner wireError
	if len(w.Error) > 0 && w.Error[0] == '{' && json.Unmarshal(w.Error, &inner) == nil {
		msgs = inner.collect(&info, msgs)
	}
	msgs = w.collect(&info, msgs)
	info.message = strings.ToLower(strings.Join(msgs, " | "))
	return info
}

// collect adds w's codes to info and returns msgs with w's messages added.
func (w *wireError) collect(info *errorInfo, msgs []string) []string {
	for _, raw := range [...]json.RawMessage{w.Code, w.Type, w.Status, w.Reason} {
		if s := scalar(raw); s != "" {
			info.codes = append(info.codes, strings.ToLower(s))
		}
	}
	for _, raw := range [...]json.RawMessage{w.Message, w.Error, w.Detail} {
		if s := scalar(raw); s != "" {
			msgs = append(msgs, s)
		}
	}
	return msgs
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

// matches reports whether the body carries any of sig's codes or phrases.
func (info *errorInfo) matches(sig signals) bool {
	for _, c := range info.codes {
		for _, want := range sig.codes {
			if c == want {
				return true
			}
		}
	}
	for _, p := range sig.phrases {
		if strings.Contains(info.message, p) {
			return true
		}
	}
	return false
}
