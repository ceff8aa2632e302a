// bodytimer.go puts read deadlines on request bodies as they arrive, so
// that a client that sends its body slowly, or stops, cannot hold a
// connection and a goroutine for ever, while a large upload that keeps
// coming is never cut. The server has no ReadTimeout for this, since one
// deadline for the whole request would cut honest uploads, nor a
// WriteTimeout, which would cut streams minutes long (see newServer, in
// cmd/credpool/proxycmd.go).

package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// bodyTiming is how long a request body may take.
type bodyTiming struct {
	idle    time.Duration // the longest wait for the next byte
	grace   time.Duration // before the average rate counts
	minRate int64         // bytes a second, on average, once grace is over
}

// defaultBodyTiming cuts a body after 30s without a byte, or when, 10s in,
// it has averaged less than 1 KiB/s: a slowloris trickle, not a slow link.
var defaultBodyTiming = bodyTiming{idle: 30 * time.Second, grace: 10 * time.Second, minRate: 1 << 10}

// orDefault returns t, or defaultBodyTiming for the zero value.
func (t bodyTiming) orDefault() bodyTiming {
	if t == (bodyTiming{}) {
		return defaultBodyTiming
	}
	return t
}

// timedBody is a request body whose every read has a deadline: the earlier
// of idle from now and the time by which the bytes read so far met the
// minimum rate. Progress moves the deadline; a stall or a trickle meets it.
type timedBody struct {
	body   io.ReadCloser
	rc     *http.ResponseController
	timing bodyTiming
	start  time.Time

	mu      sync.Mutex
	read    int64
	done    bool // the body ended, or the handler returned: deadlines are net/http's again
	expired bool // a read met the deadline
}

// deadline is when the next read must have returned.
func (b *timedBody) deadline(now time.Time) time.Time {
	idle := now.Add(b.timing.idle)
	rate := b.start.Add(b.timing.grace + time.Duration(b.read/b.timing.minRate)*time.Second)
	if rate.Before(idle) {
		return rate
	}
	return idle
}

// Read implements io.Reader. Once the body has ended no deadline is set:
// net/http then reads the connection in the background, with none, to
// learn whether the client left, and a deadline would cancel a stream.
func (b *timedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if !b.done {
		_ = b.rc.SetReadDeadline(b.deadline(time.Now()))
	}
	b.mu.Unlock()
	n, err := b.body.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.read += int64(n)
	if err != nil {
		b.done = true
		var ne net.Error
		b.expired = b.expired || errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
	}
	return n, err
}

// Close implements io.Closer.
func (b *timedBody) Close() error { return b.body.Close() }

// stop ends the deadlines when the handler returns: the transport may read
// the body after that, but the connection may by then serve another request.
func (b *timedBody) stop() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
}

// timedOut reports whether a read of the body met its deadline.
func (b *timedBody) timedOut() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.expired
}

// timedBodyKey is the context key of a request's timedBody.
type timedBodyKey struct{}

// timeBodies wraps h so that the body of every request it serves is read
// under timing. The first deadline is set at once: a handler that never
// reads the body leaves net/http to read it, to find its end, and that read
// too must end. The timedBody is in the request's context, for the error
// handler to tell a client that was too slow from an upstream that failed.
func timeBodies(h http.Handler, timing bodyTiming) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		b := &timedBody{body: r.Body, rc: http.NewResponseController(w), timing: timing, start: time.Now()}
		_ = b.rc.SetReadDeadline(b.deadline(b.start))
		defer b.stop()
		r = r.WithContext(context.WithValue(r.Context(), timedBodyKey{}, b))
		r.Body = b
		h.ServeHTTP(w, r)
	})
}

// bodyTimedOut reports whether the body of the request with ctx was cut for
// being too slow.
func bodyTimedOut(ctx context.Context) bool {
	b, ok := ctx.Value(timedBodyKey{}).(*timedBody)
	return ok && b.timedOut()
}
