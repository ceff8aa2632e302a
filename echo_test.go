package credpool

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEchoReadsWhatTheCallerSent: every place of a request a provider may
// quote back is read, decoded as the provider decodes it.
func TestEchoReadsWhatTheCallerSent(t *testing.T) {
	cases := []struct {
		name, url, body string
		header          http.Header
		phrase          string
		want            bool
	}{
		{name: "json body", url: "/v1/chat", body: `{"model":"this key has been revoked"}`, phrase: "has been revoked", want: true},
		{name: "json escapes decoded", url: "/v1/chat", body: `{"model":"\u0072evoked key"}`, phrase: "revoked", want: true},
		{name: "form body", url: "/v1/x", body: "model=key+has+been%20revoked", phrase: "has been revoked", want: true},
		{name: "path", url: "/v1/models/has%20been%20revoked:generate", phrase: "has been revoked", want: true},
		{name: "query", url: "/v1/x?model=per+day", phrase: "per day", want: true},
		{name: "header", url: "/v1/x", header: http.Header{"Anthropic-Beta": {"key-has-been-revoked"}}, phrase: "has been revoked", want: true},
		{name: "the key's own header is not the caller's", url: "/v1/x", header: http.Header{"Authorization": {"Bearer has been revoked"}},
			phrase: "has been revoked", want: false},
		{name: "words not sent", url: "/v1/chat", body: `{"model":"gpt-4o"}`, phrase: "has been revoked", want: false},
		{name: "whole words only", url: "/v1/chat", body: `{"model":"superday"}`, phrase: "per day", want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTransport(t, []string{keyA})
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(http.MethodPost, "http://api.example"+tc.url, body)
			require.NoError(t, err)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			c := call{t: tr, req: req, avoid: -1}
			require.NoError(t, c.body.load(req, tr.cfg.maxReplayBody, tr.budget, true))
			assert.Equal(t, tc.want, newEcho(&c).echoed(phrases(tc.phrase)[0]))
		})
	}
}

// TestEchoIsBlindToABodyItCannotRead: a body that streamed once, too large to
// keep, may hold any words, so none costs a key.
func TestEchoIsBlindToABodyItCannotRead(t *testing.T) {
	tr := newTransport(t, []string{keyA}, WithMaxReplayBody(4))
	req, err := http.NewRequest(http.MethodPost, "http://api.example/v1/chat", io.NopCloser(strings.NewReader(`{"model":"gpt-4o"}`)))
	require.NoError(t, err)
	c := call{t: tr, req: req, avoid: -1}
	require.NoError(t, c.body.load(req, tr.cfg.maxReplayBody, tr.budget, true))
	defer c.body.release()
	assert.True(t, newEcho(&c).echoed(phrases("has been revoked")[0]))
}

// TestEchoReadsGetBodyAfresh: a body with GetBody is read from a fresh copy,
// and the attempts still get theirs.
func TestEchoReadsGetBodyAfresh(t *testing.T) {
	tr := newTransport(t, []string{keyA})
	req, err := http.NewRequest(http.MethodPost, "http://api.example/v1/chat", strings.NewReader(`{"model":"key revoked"}`))
	require.NoError(t, err)
	require.NotNil(t, req.GetBody)
	c := call{t: tr, req: req, avoid: -1}
	require.NoError(t, c.body.load(req, tr.cfg.maxReplayBody, tr.budget, true))
	assert.True(t, newEcho(&c).echoed(phrases("key revoked")[0]))
	out := new(http.Request)
	require.NoError(t, c.body.body(out))
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	assert.Equal(t, `{"model":"key revoked"}`, string(b))
}
