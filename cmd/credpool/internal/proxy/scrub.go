// scrub.go replaces the pool's keys with their labels in text the proxy
// hands over: upstream errors may quote the key they were sent ("Key sk-...
// may not use this endpoint"), and the client must never see one. Bodies
// are scrubbed as they stream, in bounded memory.

package proxy

import (
	"bytes"
	"io"
	"net/url"
	"slices"
	"strings"
)

// scrubChunk is how much of a body the scrubber reads at a time.
const scrubChunk = 32 << 10

// pattern is one form of a key and the label that takes its place.
type pattern struct {
	find, label []byte
}

// scrubber replaces every key of the pool, as written and URL-escaped, with
// the key's redacted label. It is safe for concurrent use.
type scrubber struct {
	patterns []pattern // longest first, so that at one position the longest wins
	longest  int
	replacer *strings.Replacer // the same replacement, for short strings
}

// newScrubber returns a scrubber of keys; labels[i] replaces keys[i]. Each
// key is looked for as written and in the forms url.QueryEscape and
// url.PathEscape give, which an upstream echoing a URL would show.
func newScrubber(keys, labels []string) *scrubber {
	s := new(scrubber)
	seen := make(map[string]bool)
	for i, key := range keys {
		for _, form := range []string{key, url.QueryEscape(key), url.PathEscape(key)} {
			if form != "" && !seen[form] {
				seen[form] = true
				s.patterns = append(s.patterns, pattern{find: []byte(form), label: []byte(labels[i])})
			}
		}
	}
	slices.SortStableFunc(s.patterns, func(a, b pattern) int { return len(b.find) - len(a.find) })
	pairs := make([]string, 0, 2*len(s.patterns))
	for _, p := range s.patterns {
		pairs = append(pairs, string(p.find), string(p.label))
		s.longest = max(s.longest, len(p.find))
	}
	// strings.Replacer tries its pairs in order at each position: longest
	// first, as scan does.
	s.replacer = strings.NewReplacer(pairs...)
	return s
}

// String returns text with every key replaced.
func (s *scrubber) String(text string) string { return s.replacer.Replace(text) }

// scan appends src[:n], scrubbed, to dst and returns n: where it stopped,
// which is limit, or past it when a key that starts before limit ends later.
// Only keys that start before limit are looked for; the caller keeps the
// rest, where a key may have begun, for when more has been read.
func (s *scrubber) scan(dst, src []byte, limit int) ([]byte, int) {
	next := make([]int, len(s.patterns)) // where each pattern occurs next, at or after pos; -1: nowhere
	for i := range next {
		next[i] = -2 // not looked for yet
	}
	pos := 0
	for pos < limit {
		at, best := len(src), -1
		for i, p := range s.patterns {
			if next[i] != -1 && next[i] < pos {
				next[i] = indexFrom(src, pos, p.find)
			}
			if next[i] >= 0 && next[i] < at {
				at, best = next[i], i
			}
		}
		if best < 0 || at >= limit {
			break
		}
		dst = append(append(dst, src[pos:at]...), s.patterns[best].label...)
		pos = at + len(s.patterns[best].find)
	}
	if pos >= limit {
		return dst, pos
	}
	return append(dst, src[pos:limit]...), limit
}

// indexFrom returns where find next occurs in b at or after from, or -1.
func indexFrom(b []byte, from int, find []byte) int {
	if i := bytes.Index(b[from:], find); i >= 0 {
		return from + i
	}
	return -1
}

// reader returns body with every key replaced as it is read. It holds at
// most a chunk and the tail of a key that may straddle two reads.
func (s *scrubber) reader(body io.ReadCloser) io.ReadCloser {
	return &scrubReader{src: body, s: s}
}

// scrubReader is a body being scrubbed.
type scrubReader struct {
	src io.ReadCloser
	s   *scrubber
	in  []byte // read and not yet scrubbed: less than a key, between reads
	out []byte // scrubbed and not yet returned
	buf []byte // out's storage, reused
	err error  // the source's, returned once out is empty
}

// Read implements io.Reader.
func (r *scrubReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 && r.err == nil {
		r.fill()
	}
	if len(r.out) == 0 {
		return 0, r.err
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// fill reads a chunk and scrubs what it can: all of it at the end of the
// body, else all but the last len(longest key)-1 bytes, where a key may have
// started whose end is still to come.
func (r *scrubReader) fill() {
	if r.in == nil {
		r.in = make([]byte, 0, scrubChunk+r.s.longest)
	}
	n, err := r.src.Read(r.in[len(r.in):cap(r.in)])
	r.in, r.err = r.in[:len(r.in)+n], err
	limit := len(r.in) - (r.s.longest - 1)
	if err != nil {
		limit = len(r.in)
	}
	if limit <= 0 {
		return
	}
	var used int
	r.out, used = r.s.scan(r.buf[:0], r.in, limit)
	r.buf = r.out
	r.in = r.in[:copy(r.in, r.in[used:])]
}

// Close implements io.Closer.
func (r *scrubReader) Close() error { return r.src.Close() }
