package credpool

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// replay hands out the request body once per attempt. The first attempt gets
// the caller's body itself; later ones get a fresh copy from GetBody or from
// the buffer. Whatever path a request takes, the caller's body is closed
// exactly once: by the base transport that was handed it, by New's buffering,
// or by release when no attempt took it.
type replay struct {
	orig     io.ReadCloser // the caller's body, until an attempt takes it
	getBody  func() (io.ReadCloser, error)
	buf      []byte // the buffered body, when the caller gave no GetBody
	buffered bool
	once     bool // the body cannot be replayed: one attempt only
}

// load prepares req's body for replay. A body with GetBody is used as it is.
// Without GetBody, and only when a retry is possible at all, up to limit
// bytes are buffered; a longer body is sent as it streams, once. A request
// without a body, the common case, costs two comparisons.
func (r *replay) load(req *http.Request, limit int64, retry bool) error {
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	r.orig, r.getBody = req.Body, req.GetBody
	if r.getBody != nil {
		return nil
	}
	if !retry {
		r.once = true
		return nil
	}
	return r.buffer(req, limit)
}

// buffer reads up to limit bytes of req's body, and keeps them to send on
// every attempt; a longer body streams once, the part read first.
func (r *replay) buffer(req *http.Request, limit int64) error {
	buf, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		req.Body.Close()
		r.orig = nil
		return fmt.Errorf("credpool: reading request body: %w", err)
	}
	if int64(len(buf)) > limit {
		r.orig, r.once = readCloser{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}, true
		return nil
	}
	r.orig = nil
	if err := req.Body.Close(); err != nil {
		return fmt.Errorf("credpool: closing request body: %w", err)
	}
	r.buf, r.buffered = buf, true
	return nil
}

// body returns the body for the next attempt and sets it on out. It reports
// an error when the body cannot be produced again.
func (r *replay) body(out *http.Request) error {
	switch {
	case r.orig != nil:
		out.Body, r.orig = r.orig, nil
	case r.buffered:
		out.Body = io.NopCloser(bytes.NewReader(r.buf))
		out.ContentLength = int64(len(r.buf))
		out.GetBody = bufferedBody(r.buf)
	case r.getBody != nil:
		b, err := r.getBody()
		if err != nil {
			return fmt.Errorf("credpool: GetBody: %w", err)
		}
		out.Body = b
	}
	return nil
}

// bufferedBody returns a GetBody that reads buf afresh each time.
func bufferedBody(buf []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
}

// canReplay reports whether another attempt can have the body.
func (r *replay) canReplay() bool { return !r.once }

// release closes the caller's body if no attempt took it.
func (r *replay) release() {
	if r.orig != nil {
		r.orig.Close()
		r.orig = nil
	}
}

// readCloser joins a reader with the closer of the stream it reads from.
type readCloser struct {
	io.Reader
	io.Closer
}

// peekBody reads up to limit bytes of resp's body to classify it and puts
// them back, so the caller still reads the whole body. A body read to its end
// is closed at once, which frees the connection for reuse.
func peekBody(resp *http.Response, limit int64) []byte {
	if resp.Body == nil || resp.Body == http.NoBody {
		return nil
	}
	buf, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	switch {
	case err != nil:
		// Keep the read part and the error for the caller to meet.
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(buf), errReader{err}), resp.Body}
	case int64(len(buf)) < limit:
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(buf))
	default:
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(buf), resp.Body), resp.Body}
	}
	return buf
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// discard closes a response that will not reach the caller, after reading a
// little of what is left so that a short body frees its connection for reuse.
func discard(resp *http.Response) {
	if resp == nil {
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

// decoded returns the peeked error body as the classifier should read it: a
// gzip body (when the caller asked for one and the transport left it
// compressed) is inflated, at most limit bytes, for the classifier's eyes
// only. The caller still gets the bytes the provider sent.
func decoded(resp *http.Response, body []byte, limit int64) []byte {
	if resp.Uncompressed || !strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		return body
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return body
	}
	plain, _ := io.ReadAll(io.LimitReader(zr, limit)) // a truncated stream still gives its start
	return plain
}
