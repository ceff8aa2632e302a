// helpers_test.go has what the tests share: goleak in TestMain, and a fake
// OpenAI-style upstream that records what reached it. The proxy's own tests
// are in internal/proxy, with an upstream of their own.

package main

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

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go-redis (of --store redis://) starts a clock goroutine of its
		// own when it is loaded, and never stops it.
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.startGlobalTimeCache.func1"))
}

// Made-up keys, each telling the fake upstream how to answer.
const (
	goodKey    = "sk-test-good-0000000000000000-GOOD"
	good2Key   = "sk-test-good-0000000000000000-GD02"
	revokedKey = "sk-test-revoked-00000000000000-REVK"
	limitedKey = "sk-test-limited-00000000000000-LIMT"
	clientKey  = "sk-client-placeholder-0000000-CLNT" // what an SDK sends as its own key
	testToken  = "client-token-0123456789abcdef"
)

// The upstream's bodies, in OpenAI's wire format.
const (
	upRevokedBody = `{"error":{"message":"Incorrect API key provided: sk-tes***REVK.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`
	upLimitedBody = `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	upModelsBody  = `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model"}]}`
)

// seen is one request as the upstream received it.
type seen struct {
	Path          string
	Query         url.Values
	Header        http.Header
	Body          string // empty for /v1/upload, whose body is only counted
	Length        int64  // the bytes of body received
	ContentLength int64  // as the request declared it; -1 for chunked
}

// upstream is a fake OpenAI-style API. Each key answers as its name says;
// any other key gets 401 invalid_api_key. /v1/stream sends server-sent
// events: the first at once, the rest after release is closed. /v1/upload
// reads and discards its body, keeping only its length. Every answer allows
// any web page to read it (Access-Control-Allow-Origin: *), as some APIs do.
type upstream struct {
	*httptest.Server
	release chan struct{}

	mu   sync.Mutex
	seen []seen
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{release: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(func() {
		u.Release()
		u.Close()
	})
	return u
}

// Release lets /v1/stream finish.
func (u *upstream) Release() {
	select {
	case <-u.release:
	default:
		close(u.release)
	}
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.record(r)
	key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	w.Header().Set("Content-Type", "application/json")
	for name, v := range corsHeaders {
		w.Header().Set(name, v)
	}
	switch key {
	case goodKey, good2Key:
	case limitedKey:
		w.Header().Set("Retry-After", "600")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, upLimitedBody)
		return
	default:
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, upRevokedBody)
		return
	}
	switch r.URL.Path {
	case "/v1/stream":
		u.stream(w)
	case "/v1/slow":
		<-u.release
		io.WriteString(w, upModelsBody)
	case "/v1/echo-key":
		echoKey(w, r, key)
	default:
		io.WriteString(w, upModelsBody)
	}
}

// corsHeaders are what the upstream sends to let any web page read it.
var corsHeaders = map[string]string{
	"Access-Control-Allow-Origin":      "*",
	"Access-Control-Allow-Credentials": "true",
	"Access-Control-Allow-Headers":     "Authorization, Content-Type",
	"Access-Control-Expose-Headers":    "X-Request-Id",
}

// record reads r's body and notes the request. An upload is counted, not
// kept, so that the test's own memory does not grow with it.
func (u *upstream) record(r *http.Request) {
	s := seen{Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), ContentLength: r.ContentLength}
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

// stream sends one event, flushes, waits for release, then sends the rest.
func (u *upstream) stream(w http.ResponseWriter) {
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

// requests returns what reached the upstream so far.
func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.seen...)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// discardLogger logs nothing.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// textLogger logs to w.
func textLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
