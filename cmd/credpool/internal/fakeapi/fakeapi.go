// Package fakeapi is test support, imported only by tests: the made-up keys
// that the command's and the proxy's tests use, and a fake OpenAI-style
// upstream that answers as each key says and records what reached it.
package fakeapi

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Made-up keys, each telling the fake upstream how to answer.
const (
	// GoodKey is a key the upstream accepts.
	GoodKey = "sk-test-good-0000000000000000-GOOD"
	// Good2Key is another key the upstream accepts.
	Good2Key = "sk-test-good-0000000000000000-GD02"
	// RevokedKey is a key the upstream refuses with 401 invalid_api_key,
	// as it does every key it does not know.
	RevokedKey = "sk-test-revoked-00000000000000-REVK"
	// LimitedKey is a key the upstream answers with 429 and Retry-After.
	LimitedKey = "sk-test-limited-00000000000000-LIMT"
	// ClientKey is what an SDK sends as its own key.
	ClientKey = "sk-client-placeholder-0000000-CLNT"
	// Token is a client token, for a proxy that asks for one.
	Token = "client-token-0123456789abcdef"
)

// The upstream's bodies, in OpenAI's wire format.
const (
	// RevokedBody is the upstream's 401, for a key it does not accept.
	RevokedBody = `{"error":{"message":"Incorrect API key provided: sk-tes***REVK.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`
	// LimitedBody is the upstream's 429, for LimitedKey.
	LimitedBody = `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	// ModelsBody is the upstream's 200, for most paths.
	ModelsBody = `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model"}]}`
)

// CORSHeaders are what the upstream sends to let any web page read it.
var CORSHeaders = map[string]string{
	"Access-Control-Allow-Origin":      "*",
	"Access-Control-Allow-Credentials": "true",
	"Access-Control-Allow-Headers":     "Authorization, Content-Type",
	"Access-Control-Expose-Headers":    "X-Request-Id",
}

// Seen is one request as the upstream received it.
type Seen struct {
	Path          string
	Query         url.Values
	Header        http.Header
	Body          string // empty for /v1/upload, whose body is only counted
	Length        int64  // the bytes of body received
	ContentLength int64  // as the request declared it; -1 for chunked
}

// Upstream is a fake OpenAI-style API. Each key answers as its name says;
// any other key gets 401 invalid_api_key. /v1/stream sends server-sent
// events: the first at once, the rest after Release. /v1/slow answers only
// after Release. /v1/echo-key quotes the key it was sent (see echoKey);
// with ?slow, only after Release.
// /v1/upload reads and discards its body, keeping only its length. Every
// answer allows any web page to read it (CORSHeaders), as some APIs do.
type Upstream struct {
	*httptest.Server
	release chan struct{}

	mu   sync.Mutex
	seen []Seen
}

// NewUpstream starts an Upstream, released and closed when t ends.
func NewUpstream(t testing.TB) *Upstream {
	u := &Upstream{release: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(func() {
		u.Release()
		u.Close()
	})
	return u
}

// Release lets /v1/stream and /v1/slow finish. It may be called more than
// once.
func (u *Upstream) Release() {
	select {
	case <-u.release:
	default:
		close(u.release)
	}
}

// Released is closed once Release has been called.
func (u *Upstream) Released() <-chan struct{} { return u.release }

// Requests returns what reached the upstream so far.
func (u *Upstream) Requests() []Seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Seen(nil), u.seen...)
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.record(r)
	key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	w.Header().Set("Content-Type", "application/json")
	for name, v := range CORSHeaders {
		w.Header().Set(name, v)
	}
	switch key {
	case GoodKey, Good2Key:
	case LimitedKey:
		w.Header().Set("Retry-After", "600")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, LimitedBody)
		return
	default:
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, RevokedBody)
		return
	}
	switch r.URL.Path {
	case "/v1/stream":
		u.stream(w)
	case "/v1/slow":
		<-u.release
		io.WriteString(w, ModelsBody)
	case "/v1/echo-key":
		if r.URL.Query().Has("slow") {
			<-u.release
		}
		echoKey(w, r, key)
	default:
		io.WriteString(w, ModelsBody)
	}
}

// record reads r's body and notes the request. An upload is counted, not
// kept, so that the test's own memory does not grow with it.
func (u *Upstream) record(r *http.Request) {
	s := Seen{Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), ContentLength: r.ContentLength}
	if r.URL.Path == "/v1/upload" {
		s.Length, _ = io.Copy(io.Discard, r.Body)
	} else {
		body, _ := io.ReadAll(r.Body)
		s.Body, s.Length = string(body), int64(len(body))
	}
	u.mu.Lock()
	u.seen = append(u.seen, s)
	u.mu.Unlock()
}

// echoKey answers as a provider that quotes the key it was sent, as written
// and URL-escaped, in a 400 (or a 200, with ?ok). The key comes after
// 32 KiB less a few bytes of padding, so that it straddles the boundary of
// the reads that copy the body. ?encoding=gzip compresses the body;
// ?encoding=br claims Brotli and sends it as it is.
func echoKey(w http.ResponseWriter, r *http.Request, key string) {
	body := []byte(`{"error":{"message":"` + strings.Repeat("x", 32<<10-7) + "Key " + key +
		" may not use this endpoint (key=" + url.QueryEscape(key) + `)","type":"invalid_request_error"}}`)
	switch r.URL.Query().Get("encoding") {
	case "gzip":
		var zipped bytes.Buffer
		zw := gzip.NewWriter(&zipped)
		zw.Write(body)
		zw.Close()
		body = zipped.Bytes()
		w.Header().Set("Content-Encoding", "gzip")
	case "br":
		w.Header().Set("Content-Encoding", "br")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.URL.Query().Has("ok") {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusBadRequest)
	}
	w.Write(body)
}

// stream sends one event, flushes, waits for Release (or 10s), then sends
// the rest.
func (u *Upstream) stream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	f := w.(http.Flusher)
	io.WriteString(w, "data: {\"n\":1}\n\n")
	f.Flush()
	select {
	case <-u.release:
	case <-time.After(10 * time.Second):
	}
	for _, n := range []string{"2", "3"} {
		io.WriteString(w, "data: {\"n\":"+n+"}\n\n")
		f.Flush()
	}
	io.WriteString(w, "data: [DONE]\n\n")
}

// DiscardLogger returns a logger that logs nothing.
func DiscardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
