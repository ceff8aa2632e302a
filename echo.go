package credpool

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// Text the caller wrote is never evidence against a key. A provider that
// quotes the request back without quotes ("Invalid value for role: this key
// has been revoked"), or with quotes a caller can close early, would
// otherwise let one request kill or cool keys. So before words in a message
// cost a key, the request is read for the same words: its URL, its headers
// and its body, JSON strings decoded, since a provider quotes what it
// decoded ("\u0072evoked" reads "revoked"). Only the error path pays for it,
// and only when a verdict would rest on words.

// echo reads what the caller said in one request, in the words form of
// prose.go, at the first question, and keeps it for the request's later
// attempts. It is made only on the error path, apart from the call, so that
// the call, which the success path keeps on the stack, never escapes.
type echo struct {
	req   *http.Request
	skip  [2]string // the key's header and the one WithHeader drops
	body  replay    // a copy of the call's: buffer, GetBody, and whether it streamed once
	limit int64     // WithMaxReplayBody
	said  string
	known bool // said is built
	blind bool // the body went by unseen: any words may be the caller's
}

// newEcho prepares to read what the caller of c said.
func newEcho(c *call) *echo {
	return &echo{req: c.req, skip: [2]string{c.t.cfg.header, c.t.cfg.drop},
		body:  replay{buf: c.body.buf, buffered: c.body.buffered, getBody: c.body.getBody, once: c.body.once},
		limit: c.t.cfg.maxReplayBody}
}

// echoed reports whether the caller's request carries phrase, a phrase as
// phrases returns it. A body that streamed once, unbuffered, cannot be read
// again: then every phrase may be the caller's, and words cost no key.
func (e *echo) echoed(phrase string) bool {
	if !e.known {
		e.said, e.blind = e.callerWords()
		e.known = true
	}
	return e.blind || containsPhrase(e.said, phrase)
}

// callerWords returns the words of the caller's request: URL, header values
// but the key's, and body. blind is true when the body cannot be read.
func (e *echo) callerWords() (said string, blind bool) {
	var b strings.Builder
	u := e.req.URL
	b.WriteString(unescape(u.EscapedPath()))
	b.WriteByte(' ')
	b.WriteString(unescape(u.RawQuery))
	for name, vs := range e.req.Header {
		if name == e.skip[0] || name == e.skip[1] {
			continue
		}
		for _, v := range vs {
			b.WriteByte(' ')
			b.WriteString(v)
		}
	}
	body, ok := e.body.peek(e.limit)
	if !ok {
		return "", true
	}
	b.WriteByte(' ')
	writeBodyText(&b, body)
	return words(strings.ToLower(b.String())), false
}

// writeBodyText writes the text of a request body: a JSON body's strings,
// keys and values, as decoded; anything else as it is and, if it decodes, as
// a URL-encoded form.
func writeBodyText(b *strings.Builder, body []byte) {
	if json.Valid(body) {
		dec := json.NewDecoder(bytes.NewReader(body))
		for {
			tok, err := dec.Token()
			if err != nil {
				return
			}
			if s, ok := tok.(string); ok {
				b.WriteString(s)
				b.WriteByte(' ')
			}
		}
	}
	b.Write(body)
	b.WriteByte(' ')
	b.WriteString(unescape(string(body)))
}

// unescape undoes URL encoding where it can, for the words of a path, a
// query or a form.
func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
