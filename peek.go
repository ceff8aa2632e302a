package credpool

// Error bodies: read up to a bound, and in bounded time, so the classifier
// can see them, and put back whole for the caller.

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// readCloser joins a reader with the closer of the stream it reads from.
type readCloser struct {
	io.Reader
	io.Closer
}

// peekBody reads up to limit bytes of resp's body to classify it and puts
// them back, so the caller still reads the whole body. A body read to its end
// is closed at once, which frees the connection for reuse.
//
// An upstream may send the headers of an error and then stall the body for as
// long as it likes. The read runs apart and is waited for at most wait: past
// that, the classifier gets what came so far (often nothing, so it goes by
// status and headers), and the caller gets a body that goes on from where the
// read is, for the caller to wait on or close.
func peekBody(resp *http.Response, limit int64, wait time.Duration) []byte {
	if resp.Body == nil || resp.Body == http.NoBody {
		return nil
	}
	p := &peek{done: make(chan struct{})}
	go p.read(resp.Body, limit)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		resp.Body = &lateBody{p: p, rest: resp.Body}
		return p.sofar()
	}
	switch {
	case p.err != nil:
		// Keep the read part and the error for the caller to meet.
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(p.buf), errReader{p.err}), resp.Body}
	case int64(len(p.buf)) < limit:
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(p.buf))
	default:
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(p.buf), resp.Body), resp.Body}
	}
	return p.buf
}

// peek is the read of an error body's first bytes, running apart so that
// peekBody can stop waiting for it.
type peek struct {
	mu   sync.Mutex
	buf  []byte
	err  error         // the read's error, io.EOF excluded
	done chan struct{} // closed when the read ends: buf and err are final
}

// chunks are the buffers peek reads into. What a read gets is copied out at
// once, so a buffer is free again when its read ends: pooled, an error body
// of a few hundred bytes does not cost a fresh, cleared 8 KiB.
var chunks = sync.Pool{New: func() any { return new([8 << 10]byte) }}

// read reads up to limit bytes of body, then closes done.
func (p *peek) read(body io.Reader, limit int64) {
	defer close(p.done)
	c := chunks.Get().(*[8 << 10]byte)
	defer chunks.Put(c)
	chunk := c[:min(limit, int64(len(c)))]
	for int64(len(p.buf)) < limit {
		n, err := body.Read(chunk[:min(int64(len(chunk)), limit-int64(len(p.buf)))])
		p.mu.Lock()
		p.buf = append(p.buf, chunk[:n]...)
		p.mu.Unlock()
		if err == io.EOF {
			return
		}
		if err != nil {
			p.err = err
			return
		}
	}
}

// sofar returns a copy of what the read has got.
func (p *peek) sofar() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.buf)
}

// lateBody is the body of an error response whose read outlasted peekBody's
// wait: reading it waits for that read, then goes on with the rest. Closing
// it closes the upstream's body, which ends the read.
type lateBody struct {
	p    *peek
	rest io.ReadCloser
	r    io.Reader // once the read is done
}

func (b *lateBody) Read(buf []byte) (int, error) {
	if b.r == nil {
		<-b.p.done
		b.r = io.MultiReader(bytes.NewReader(b.p.buf), b.rest)
		if b.p.err != nil {
			b.r = io.MultiReader(bytes.NewReader(b.p.buf), errReader{b.p.err})
		}
	}
	return b.r.Read(buf)
}

func (b *lateBody) Close() error { return b.rest.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// discard closes a response that will not reach the caller, after reading a
// little of what is left so that a short body frees its connection for reuse.
// A body that already stalled is closed at once.
func discard(resp *http.Response) {
	if resp == nil {
		return
	}
	if _, stalled := resp.Body.(*lateBody); !stalled {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	}
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
