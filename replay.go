package credpool

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
)

// replay hands out the request body once per attempt. The first attempt gets
// the caller's body itself; later ones get a fresh copy from GetBody or from
// the buffer. Whatever path a request takes, the caller's body is closed
// exactly once: by the base transport that was handed it, by the buffering,
// or by release when no attempt took it.
type replay struct {
	orig     io.ReadCloser // the caller's body, until an attempt takes it
	getBody  func() (io.ReadCloser, error)
	buf      []byte // the buffered body, when the caller gave no GetBody
	buffered bool
	once     bool          // the body cannot be replayed: one attempt only
	skipped  string        // why a body that a retry could have wanted is not kept
	budget   *replayBudget // what buf holds of it, returned by release
	held     int64
}

// replayBudget bounds the bytes that every request in flight holds for replay
// together (WithReplayBudget), so that many large uploads at once cannot
// exhaust memory: a body that does not fit is sent once, as it streams.
type replayBudget struct {
	limit int64
	used  atomic.Int64
}

// take reserves up to n bytes, and at least least: it returns how many it
// reserved, 0 when not even least fit.
func (b *replayBudget) take(n, least int64) int64 {
	for {
		used := b.used.Load()
		free := b.limit - used
		if free < least {
			return 0
		}
		if got := min(n, free); b.used.CompareAndSwap(used, used+got) {
			return got
		}
	}
}

func (b *replayBudget) give(n int64) { b.used.Add(-n) }

// Why a body is not replayed, for the error or the response that a retry
// would have needed.
const (
	skippedTooLarge = "request body larger than WithMaxReplayBody"
	skippedBudget   = "request body over WithReplayBudget, with other requests' bodies held"
)

// load prepares req's body for replay. A body with GetBody is used as it is.
// Without GetBody, and only when a retry is possible at all, the body is
// buffered if it fits both limit and the budget; otherwise it is sent as it
// streams, once. A body whose length is known is never read to find out
// that it is too long, and its buffer is allocated once, at its size. A
// request without a body, the common case, costs two comparisons.
func (r *replay) load(req *http.Request, limit int64, budget *replayBudget, retry bool) error {
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
	if req.ContentLength > limit {
		r.once, r.skipped = true, skippedTooLarge
		return nil
	}
	return r.buffer(req, limit, budget)
}

// buffer reads req's body, up to limit bytes, reserving them from budget as
// it reads: all at once when the length is known, else a chunk at a time. A
// body that turns out longer than limit, or that the budget cannot hold,
// streams once: the part read first, then the rest.
func (r *replay) buffer(req *http.Request, limit int64, budget *replayBudget) error {
	r.budget = budget
	size, least := req.ContentLength+1, req.ContentLength+1 // the byte past the end meets io.EOF in the same buffer
	if req.ContentLength <= 0 {
		size, least = min(limit+1, 512), 1 // unknown: grow as it comes
	}
	size = r.reserve(size, least)
	if size == 0 {
		r.once, r.skipped = true, skippedBudget
		return nil
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				r.stream(req, buf, skippedTooLarge)
				return nil
			}
			grow := r.reserve(min(int64(cap(buf)), limit+1-int64(len(buf))), 1)
			if grow == 0 {
				r.stream(req, buf, skippedBudget)
				return nil
			}
			buf = slices.Grow(buf, int(grow))
		}
		n, err := req.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			req.Body.Close()
			r.orig = nil
			return fmt.Errorf("credpool: reading request body: %w", err)
		}
	}
	if int64(len(buf)) > limit {
		r.stream(req, buf, skippedTooLarge)
		return nil
	}
	r.orig = nil
	if err := req.Body.Close(); err != nil {
		return fmt.Errorf("credpool: closing request body: %w", err)
	}
	r.buf, r.buffered = buf, true
	return nil
}

// reserve takes up to n bytes more from the budget, at least least, and
// returns how many it took.
func (r *replay) reserve(n, least int64) int64 {
	got := n
	if r.budget != nil {
		got = r.budget.take(n, least)
	}
	r.held += got
	return got
}

// stream gives up buffering: the body is sent once, the part read first.
func (r *replay) stream(req *http.Request, read []byte, why string) {
	r.orig = readCloser{io.MultiReader(bytes.NewReader(read), req.Body), req.Body}
	r.once, r.skipped = true, why
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

// release closes the caller's body if no attempt took it, and gives back
// what the buffer held of the budget.
func (r *replay) release() {
	if r.orig != nil {
		r.orig.Close()
		r.orig = nil
	}
	if r.held > 0 && r.budget != nil {
		r.budget.give(r.held)
		r.held = 0
	}
}

// peek returns the request body without using it up: the buffer, or a fresh
// copy from GetBody, up to limit bytes. ok is false when the body cannot be
// had again or is longer than limit.
func (r *replay) peek(limit int64) (body []byte, ok bool) {
	switch {
	case r.buffered:
		return r.buf, true
	case r.getBody != nil:
		rc, err := r.getBody()
		if err != nil {
			return nil, false
		}
		defer rc.Close()
		body, err := io.ReadAll(io.LimitReader(rc, limit+1))
		return body, err == nil && int64(len(body)) <= limit
	case r.once:
		return nil, false
	}
	return nil, true // no body, or one already sent that GetBody cannot give again
}

// notReplayed tells the caller, on a response that another key or a retry
// might have fixed, why credpool sent the request only once: its body was
// over WithMaxReplayBody or WithReplayBudget.
func (c *call) notReplayed(resp *http.Response) {
	if c.body.skipped != "" {
		resp.Header.Set(NotReplayedHeader, c.body.skipped)
	}
}

// NotReplayedHeader is set on an error response handed back without the
// retry or rotation it called for, because the request's body could not be
// replayed; its value says why. See WithReplayBudget.
const NotReplayedHeader = "Credpool-Not-Replayed"
