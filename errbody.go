package credpool

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"unicode/utf8"
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

// wireError holds the fields providers put in an error object, decoded in
// the pass that validates the body. Fields whose type providers disagree
// on are text, which takes a string or a number and ignores anything else:
// OpenRouter's code is a number, OpenAI's a string or null, Google's details
// a list of objects. Absent fields cost nothing.
type wireError struct {
	Code     text     `json:"code"`
	Type     text     `json:"type"`
	Status   text     `json:"status"`
	Reason   text     `json:"reason"`
	Message  text     `json:"message"`
	Error    text     `json:"error"`             // a flat message (xAI) or an OAuth code; an object is read by flatBody or wireBody
	Detail   text     `json:"detail"`            // FastAPI style (Mistral)
	Desc     text     `json:"error_description"` // OAuth 2.0 (RFC 6749)
	Details  details  `json:"details"`
	Metadata metadata `json:"metadata"`
	ResetsAt text     `json:"resets_at"`
	ResetAt  text     `json:"reset_at"`
	ResetsIn text     `json:"resets_in_seconds"` // ChatGPT's usage_limit_reached
	Retry    text     `json:"retry_after"`       // seconds, in the body
}

// flatBody is the top level of the usual error body, which names "error"
// once, as an object, or not at all: the nested object is decoded in the
// same pass as the rest. Its Error, being shallower, takes the key from the
// embedded wireError's; the nested object's own "error" is only text, so no
// body makes the decoder go deeper.
type flatBody struct {
	wireError
	Error *wireError `json:"error"`
}

// wireBody is the top level of the other bodies: an "error" that is a string
// (xAI's message, OAuth's code) or that comes twice. nested decodes each
// value of "error" on its own and keeps the last, as a decoder keeps the last
// of any field.
type wireBody struct {
	wireError
	Error nested `json:"error"`
}

// text is a JSON string's value or a number's text; "" for anything else
// (null, objects, arrays). Decoded from the body's bytes in place: the
// outer decode has validated them.
type text string

func (t *text) UnmarshalJSON(raw []byte) error {
	*t = text(scalar(raw))
	return nil
}

// nested is the top level's "error": a nested error object, or text.
type nested struct {
	text  text
	inner *wireError
}

// UnmarshalJSON keeps the last "error" of a body that repeats it, as a
// decoder keeps the last of any field.
func (n *nested) UnmarshalJSON(raw []byte) error {
	*n = nested{text: text(scalar(raw))}
	if raw[0] == '{' {
		n.inner = new(wireError)
		if json.Unmarshal(raw, n.inner) != nil {
			n.inner = nil
		}
	}
	return nil
}

// details is google.rpc.Status details, kept only if the whole list has the
// shape wireDetail expects: a list with a stranger in it says nothing.
type details []wireDetail

func (d *details) UnmarshalJSON(raw []byte) error {
	var list []wireDetail
	if json.Unmarshal(raw, &list) != nil {
		list = nil
	}
	*d = list
	return nil
}

// metadata is OpenRouter's error metadata, kept only if it has the shape
// wireMetadata expects.
type metadata struct {
	wireMetadata
	ok bool
}

func (m *metadata) UnmarshalJSON(raw []byte) error {
	*m = metadata{}
	m.ok = json.Unmarshal(raw, &m.wireMetadata) == nil
	return nil
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
	trimmed := firstOfList(bytes.TrimSpace(body))
	outer, inner, ok := decodeError(trimmed)
	if !ok {
		info.html = len(trimmed) > 0 && trimmed[0] == '<'
		info.message = decodeMessage(string(trimmed))
		return info
	}
	msgs := make([]string, 0, 4)
	if inner != nil {
		msgs = inner.collect(&info, msgs)
	}
	msgs = outer.collect(&info, msgs)
	info.message = decodeMessage(strings.Join(msgs, " | "))
	if len(msgs) == 1 && isToken(msgs[0]) {
		info.bare = strings.ToLower(msgs[0])
	}
	return info
}

// decodeError decodes an error body that is a JSON object: its fields, and
// those of the nested error object, if its "error" is one. ok is false for
// any other body.
func decodeError(body []byte) (outer, inner *wireError, ok bool) {
	if len(body) == 0 || body[0] != '{' {
		return nil, nil, false
	}
	if oneErrorKey(body) {
		var f flatBody
		err := json.Unmarshal(body, &f)
		if _, mistyped := err.(*json.UnmarshalTypeError); !mistyped { // else "error" is not an object
			return &f.wireError, f.Error, err == nil
		}
	}
	var w wireBody
	if json.Unmarshal(body, &w) != nil {
		return nil, nil, false
	}
	w.wireError.Error = w.Error.text
	return &w.wireError, w.Error.inner, true
}

// oneErrorKey reports whether body names the key "error" at most once, at
// any depth, so that flatBody cannot merge two objects into one. A key that
// the decoder takes for "error" is spelled so in the body, in any case,
// unless it has a \u escape: a body with one is not counted on.
func oneErrorKey(body []byte) bool {
	if bytes.Contains(body, []byte(`\u`)) {
		return false
	}
	seen := false
	for i := 0; ; i++ {
		j := bytes.IndexByte(body[i:], '"')
		if j < 0 {
			return true
		}
		i += j
		if isErrorKey(body[i:]) {
			if seen {
				return false
			}
			seen = true
		}
	}
}

// isErrorKey reports whether s starts with the key "error", in any case,
// quoted and followed by its colon.
func isErrorKey(s []byte) bool {
	if len(s) < 8 || !bytes.EqualFold(s[:7], []byte(`"error"`)) {
		return false
	}
	rest := bytes.TrimLeft(s[7:], " \t\r\n")
	return len(rest) > 0 && rest[0] == ':'
}

// firstOfList returns the first element of a JSON list, which is how
// Google's streaming endpoints send an error; any other body as it is.
func firstOfList(body []byte) []byte {
	if len(body) == 0 || body[0] != '[' {
		return body
	}
	var list []json.RawMessage
	if json.Unmarshal(body, &list) == nil && len(list) > 0 {
		return bytes.TrimSpace(list[0])
	}
	return body
}

// collect adds what w says to info and returns msgs with w's messages added.
func (w *wireError) collect(info *errorInfo, msgs []string) []string {
	for _, s := range [...]text{w.Code, w.Type, w.Status, w.Reason} {
		if s != "" {
			info.codes = append(info.codes, strings.ToLower(string(s)))
		}
	}
	for _, s := range [...]text{w.Message, w.Error, w.Detail, w.Desc} {
		if s != "" {
			msgs = append(msgs, string(s))
		}
	}
	if s := string(w.Error); isToken(s) {
		info.codes = append(info.codes, strings.ToLower(s)) // OAuth's "error":"invalid_grant"
	}
	w.Details.collect(info)
	if w.Metadata.ok {
		msgs = w.Metadata.collect(info, msgs)
	}
	for _, s := range [...]text{w.ResetsAt, w.ResetAt} {
		if s != "" {
			info.reset = string(s)
		}
	}
	for _, s := range [...]text{w.ResetsIn, w.Retry} {
		if s != "" {
			info.wait = string(s)
		}
	}
	return msgs
}

// collect adds Google's reasons, RetryInfo, quota and field violations to info.
func (d details) collect(info *errorInfo) {
	for _, entry := range d {
		if entry.Reason != "" {
			info.codes = append(info.codes, strings.ToLower(entry.Reason))
		}
		if entry.RetryDelay != "" {
			info.retryDelay = entry.RetryDelay
		}
		for _, v := range entry.Violations {
			info.quotaIDs = append(info.quotaIDs, v.QuotaID)
		}
		info.field = info.field || len(entry.FieldViolations) > 0
	}
}

// collect adds the upstream's raw message to msgs and the reset of the limit
// that was hit to info.
func (m *wireMetadata) collect(info *errorInfo, msgs []string) []string {
	if s := scalar(m.Raw); s != "" {
		msgs = append(msgs, s)
	}
	for k, v := range m.Headers {
		if strings.EqualFold(k, "X-RateLimit-Reset") {
			info.reset = scalar(v)
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
// else (null, objects, arrays, bad JSON). A string without escapes, in valid
// UTF-8, is its own value: only the others go through the decoder.
func scalar(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	switch c := raw[0]; {
	case c == '"':
		if len(raw) >= 2 && raw[len(raw)-1] == '"' && plain(raw[1:len(raw)-1]) {
			return string(raw[1 : len(raw)-1])
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return string(raw)
	}
	return ""
}

// plain reports whether s, the inside of a JSON string, decodes to itself:
// no escapes, no byte the decoder would refuse or replace.
func plain(s []byte) bool {
	ascii := true
	for _, c := range s {
		switch {
		case c < ' ' || c == '"' || c == '\\':
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return ascii || utf8.Valid(s)
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
