// scrub_test.go tests that the pool's keys never reach a client in an
// upstream's error: the streaming replacement however the body is cut into
// reads, and the proxy end to end, compressed bodies included.

package proxy

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Keys whose escaped forms differ from them, and one that is the start of
// another.
const (
	slashKey  = "sk-with/slash+plus=eq-0000000000-SLSH"
	prefixKey = "sk-test-good-0000000000000000-GOOD-LONGER"
)

// testScrubber scrubs goodKey, slashKey and prefixKey, labelled A, B and C.
func testScrubber() *scrubber {
	return newScrubber([]string{goodKey, slashKey, prefixKey}, []string{"<A>", "<B>", "<C>"})
}

// reference scrubs s the slow way: longest pattern first at each position,
// which is what strings.Replacer does with the patterns in that order.
func reference(s string) string {
	pairs := [][2]string{
		{goodKey, "<A>"}, {slashKey, "<B>"}, {url.QueryEscape(slashKey), "<B>"}, {url.PathEscape(slashKey), "<B>"}, {prefixKey, "<C>"},
	}
	slices.SortFunc(pairs, func(a, b [2]string) int { return len(b[0]) - len(a[0]) })
	var args []string
	for _, p := range pairs {
		args = append(args, p[0], p[1])
	}
	return strings.NewReplacer(args...).Replace(s)
}

// chunks is a reader that returns at most n bytes a read.
type chunks struct {
	r io.Reader
	n int
}

func (c *chunks) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

func TestScrubberReplacesEveryForm(t *testing.T) {
	s := testScrubber()
	cases := []struct{ name, in, want string }{
		{"nothing", "no key here", "no key here"},
		{"empty", "", ""},
		{"as written", "Key " + goodKey + " may not use this endpoint", "Key <A> may not use this endpoint"},
		{"query-escaped", "?key=" + url.QueryEscape(slashKey), "?key=<B>"},
		{"path-escaped", "/keys/" + url.PathEscape(slashKey) + "/", "/keys/<B>/"},
		{"as written, with a slash", slashKey, "<B>"},
		{"the longer key wins", prefixKey + " " + goodKey, "<C> <A>"},
		{"back to back", goodKey + goodKey, "<A><A>"},
		{"at the very end", "x" + goodKey, "x<A>"},
		{"cut short at the end", "x" + goodKey[:20], "x" + goodKey[:20]},
		{"a near miss", goodKey[:len(goodKey)-1] + "X", goodKey[:len(goodKey)-1] + "X"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, reference(c.in), "the reference agrees")
			assert.Equal(t, c.want, s.String(c.in))
			got, err := io.ReadAll(s.reader(io.NopCloser(strings.NewReader(c.in))))
			require.NoError(t, err)
			assert.Equal(t, c.want, string(got))
		})
	}
}

// TestScrubberAcrossReads cuts a body at every byte into reads of every
// size: a key that straddles two reads, or many, is replaced all the same.
func TestScrubberAcrossReads(t *testing.T) {
	s := testScrubber()
	body := "{" + goodKey + "|" + url.QueryEscape(slashKey) + "|" + prefixKey + "|" + goodKey[:30] + "|" + url.PathEscape(slashKey) + "}"
	want := reference(body)
	require.NotContains(t, want, goodKey, "the reference scrubs")
	for n := 1; n <= len(body); n++ {
		got, err := io.ReadAll(s.reader(io.NopCloser(&chunks{strings.NewReader(body), n})))
		require.NoError(t, err)
		require.Equal(t, want, string(got), "reads of %d bytes", n)
	}
	for _, r := range []io.Reader{iotest.OneByteReader(strings.NewReader(body)), iotest.HalfReader(strings.NewReader(body)),
		iotest.DataErrReader(strings.NewReader(body))} {
		got, err := io.ReadAll(s.reader(io.NopCloser(r)))
		require.NoError(t, err)
		assert.Equal(t, want, string(got))
	}
	// A reader that hands the output back a byte at a time sees it all.
	got, err := io.ReadAll(iotest.OneByteReader(s.reader(io.NopCloser(strings.NewReader(body)))))
	require.NoError(t, err)
	assert.Equal(t, want, string(got))
}

// TestScrubberMemoryIsBounded streams 64 MiB, a key in every few KiB,
// through the scrubber: what it holds never grows with the body.
func TestScrubberMemoryIsBounded(t *testing.T) {
	s := testScrubber()
	unit := strings.Repeat("y", 5000) + goodKey
	const total = 64 << 20
	src := io.LimitReader(&repeater{unit: unit}, total)
	r := s.reader(io.NopCloser(src)).(*scrubReader)
	buf := make([]byte, 7919) // a prime: reads end at every offset of a unit
	var out, keys int
	var carry []byte
	for {
		n, err := r.Read(buf)
		out += n
		chunk := append(carry, buf[:n]...)
		keys += bytes.Count(chunk, []byte("<A>"))
		assert.NotContains(t, string(chunk), goodKey)
		carry = append([]byte(nil), chunk[max(0, len(chunk)-2):]...) // too short to hold a whole label
		require.LessOrEqual(t, cap(r.in), scrubChunk+r.s.longest, "the input buffer stays bounded")
		require.LessOrEqual(t, cap(r.out), 2*(scrubChunk+r.s.longest), "the output buffer stays bounded")
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
	}
	units := total / len(unit)
	assert.Equal(t, units, keys, "every whole key is replaced")
	assert.Equal(t, total-units*(len(goodKey)-3), out)
}

// repeater repeats unit forever.
type repeater struct {
	unit string
	off  int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.unit[r.off:])
		n += c
		r.off = (r.off + c) % len(r.unit)
	}
	return n, nil
}

func TestScrubberPassesErrorsAndCloses(t *testing.T) {
	s := testScrubber()
	boom := errors.New("boom")
	body := &closeCounter{Reader: io.MultiReader(strings.NewReader("x"+goodKey), iotest.ErrReader(boom))}
	r := s.reader(body)
	got, err := io.ReadAll(r)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, "x<A>", string(got), "what came before the error is scrubbed and given")
	require.NoError(t, r.Close())
	assert.Equal(t, 1, body.closed)
}

type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

// TestProxyScrubsKeysFromErrors sends requests to an upstream that quotes
// the key it got, as written and URL-escaped, across a read boundary: an
// error never shows it to the client, whatever its encoding, and a success
// passes as it was sent.
func TestProxyScrubsKeysFromErrors(t *testing.T) {
	cases := []struct {
		name, query, accept string
		status              int
		scrubbed            bool // else the body is the upstream's, byte for byte
	}{
		{"error", "", "", http.StatusBadRequest, true},
		{"gzip error", "?encoding=gzip", "gzip, deflate, br", http.StatusBadRequest, true},
		{"error in an encoding the proxy cannot read", "?encoding=br", "br", http.StatusBadRequest, true},
		{"success", "?ok", "", http.StatusOK, false},
		{"gzip success", "?ok&encoding=gzip", "gzip", http.StatusOK, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := fakeapi.NewUpstream(t)
			p := newTestProxy(t, up, []string{goodKey}, "")
			req, err := http.NewRequest(http.MethodGet, p.URL+"/v1/echo-key"+c.query, nil)
			require.NoError(t, err)
			if c.accept != "" {
				req.Header.Set("Accept-Encoding", c.accept) // the client then decodes nothing itself
			}
			resp, err := p.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, c.status, resp.StatusCode)
			if resp.ContentLength >= 0 {
				assert.EqualValues(t, len(raw), resp.ContentLength, "Content-Length tells the truth")
			}
			body := decode(t, resp.Header.Get("Content-Encoding"), raw)
			// Bodies are 32 KiB: assert.Contains would print them whole.
			if !c.scrubbed {
				assert.True(t, strings.Contains(body, "Key "+goodKey+" may"), "a success passes untouched")
				return
			}
			assert.False(t, strings.Contains(body, goodKey[len("sk-"):]), "the key reached the client")
			assert.False(t, strings.Contains(body, "good-0000"), "the key's middle reached the client")
			if c.query != "?encoding=br" {
				assert.True(t, strings.Contains(body, "Key sk-…GOOD may not use this endpoint (key=sk-…GOOD)"), "the key's label takes its place")
				assert.True(t, strings.Contains(body, strings.Repeat("x", 32<<10-7)), "the rest is intact")
			} else {
				assert.Contains(t, body, "withheld")
			}
		})
	}
}

// TestProxyAsksOnlyForEncodingsItCanScrub checks that the upstream is asked
// for gzip at most, the one encoding whose error bodies the proxy can
// decode to scrub: a client that accepts gzip gets it, any other gets the
// body decoded by Go's transport.
func TestProxyAsksOnlyForEncodingsItCanScrub(t *testing.T) {
	cases := []struct {
		accept, gets string // what the client accepts, and the Content-Encoding it gets
	}{
		{"gzip, deflate, br", "gzip"},
		{"br;q=1, gzip;q=0.5", "gzip"},
		{"*", "gzip"},
		{"gzip;q=0, br", ""},
		{"br, zstd", ""},
		{"identity", ""},
	}
	for _, c := range cases {
		t.Run(c.accept, func(t *testing.T) {
			up := fakeapi.NewUpstream(t)
			p := newTestProxy(t, up, []string{goodKey}, "")
			req, err := http.NewRequest(http.MethodGet, p.URL+"/v1/echo-key?ok&encoding=gzip", nil)
			require.NoError(t, err)
			req.Header.Set("Accept-Encoding", c.accept)
			resp, err := p.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, "gzip", up.Requests()[0].Header.Get("Accept-Encoding"), "the upstream is asked for gzip alone")
			assert.Equal(t, c.gets, resp.Header.Get("Content-Encoding"))
			assert.True(t, strings.Contains(decode(t, c.gets, raw), "Key "+goodKey), "the body is whole")
		})
	}
}

// decode undoes a Content-Encoding the test knows.
func decode(t *testing.T, encoding string, raw []byte) string {
	t.Helper()
	switch encoding {
	case "":
		return string(raw)
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		require.NoError(t, err)
		plain, err := io.ReadAll(zr)
		require.NoError(t, err)
		return string(plain)
	}
	t.Fatalf("the client got a body in %s", encoding)
	return ""
}

func TestDecodeBody(t *testing.T) {
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte("plain"))
	require.NoError(t, zw.Close())
	cases := []struct {
		name, encoding, body, want, err string
	}{
		{"none", "", "plain", "plain", ""},
		{"identity", "identity", "plain", "plain", ""},
		{"gzip", "gzip", zipped.String(), "plain", ""},
		{"x-gzip, any case", "X-Gzip", zipped.String(), "plain", ""},
		{"empty gzip", "gzip", "", "", ""},
		{"gzip that is not", "gzip", "plain", "", "says it is gzip but is not"},
		{"brotli", "br", "\x8b\x02\x80plain\x03", `encoded as \"br\"`, ""},
		{"two encodings", "gzip, br", "x", `encoded as \"gzip, br\"`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: http.StatusBadRequest, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(c.body))}
			if c.encoding != "" {
				resp.Header.Set("Content-Encoding", c.encoding)
			}
			body, err := decodeBody(resp)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			got, err := io.ReadAll(body)
			require.NoError(t, err)
			assert.Contains(t, string(got), c.want)
			assert.Empty(t, resp.Header.Get("Content-Encoding"), "the client gets the body decoded")
		})
	}
}

// TestProxyScrubsItsOwnErrors has the base transport fail with an error
// that quotes the key it was given: the 502 the proxy writes does not.
func TestProxyScrubsItsOwnErrors(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	p := startTestProxy(t, up, []string{goodKey}, "", func(cfg *Config) {
		cfg.base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return nil, errors.New("refused " + r.URL.String() + "?key=" + url.QueryEscape(r.Header.Get("Authorization")))
		})
	})
	code, body := p.do(t, http.MethodGet, "/v1/models", nil)
	assert.Equal(t, http.StatusBadGateway, code)
	assert.Contains(t, body, "refused")
	assert.NotContains(t, body, goodKey)
	assert.NotContains(t, body, url.QueryEscape(goodKey))
}

// roundTripFunc is a RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
