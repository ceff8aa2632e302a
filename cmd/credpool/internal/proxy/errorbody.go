// errorbody.go makes the upstream's error responses safe to hand over: the
// keys they quote are replaced with their labels (scrub.go), in the headers
// and, as it streams, in the body, decoded first when it is compressed.
// Successful responses pass untouched: streams flow as they are sent.

package proxy

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// scrubError replaces the keys in an error response (status 400 and up). Its
// length changes, so Content-Length goes and the server chunks the body. A
// gzip body is decoded, scrubbed and sent decoded, which every client
// accepts; a body in another encoding, which the proxy does not ask for
// (acceptScrubbable), is withheld, since it cannot be checked.
func (p *Server) scrubError(resp *http.Response) error {
	if resp.StatusCode < http.StatusBadRequest {
		return nil
	}
	scrub := p.scrub.Load() // one scrubber for the headers and the body
	for _, values := range resp.Header {
		for i, v := range values {
			values[i] = scrub.String(v)
		}
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		return nil
	}
	body, err := decodeBody(resp)
	if err != nil {
		return err
	}
	resp.Body = scrub.reader(body)
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	return nil
}

// decodeBody returns resp's body without its Content-Encoding, and drops
// the header. Only gzip is undone; a body in any other encoding is replaced
// with an error of the proxy's saying so, with the upstream's status.
func decodeBody(resp *http.Response) (io.ReadCloser, error) {
	encoding := strings.ToLower(strings.TrimSpace(strings.Join(resp.Header.Values("Content-Encoding"), ",")))
	resp.Header.Del("Content-Encoding")
	switch encoding {
	case "", "identity":
		return resp.Body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(resp.Body)
		if errors.Is(err, io.EOF) {
			resp.Body.Close()
			return http.NoBody, nil // an empty body, labelled gzip all the same
		}
		if err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("the upstream's %d answer says it is gzip but is not: %w", resp.StatusCode, err)
		}
		return readCloser{zr, resp.Body}, nil
	}
	resp.Body.Close()
	resp.Header.Set("Content-Type", "application/json")
	return io.NopCloser(bytes.NewReader(withheld(resp.StatusCode, encoding))), nil
}

// withheld is the body that stands for an error body the proxy cannot read.
func withheld(status int, encoding string) []byte {
	var e apiError
	e.Error.Message = "credpool proxy: the upstream's " + strconv.Itoa(status) + " answer came encoded as " + strconv.Quote(encoding) +
		", which the proxy cannot check for keys, so its body is withheld"
	e.Error.Type, e.Error.Code = "credpool_error", "error_body_withheld"
	out, _ := json.Marshal(e) // cannot fail: strings only
	return out
}

// readCloser reads from one reader and closes another: a decoder and the
// body under it.
type readCloser struct {
	io.Reader
	io.Closer
}

// acceptScrubbable limits the encodings the upstream may use to gzip, the
// one an error body can be decoded from to be scrubbed: Brotli and zstd,
// which Node's fetch and others ask for, would leave the proxy a body it
// cannot read. A client that accepts gzip gets it as the upstream sends it;
// for any other, the header goes, and Go's transport asks for gzip and
// decodes the answer itself.
func acceptScrubbable(out *http.Request) {
	if acceptsGzip(out.Header.Values("Accept-Encoding")) {
		out.Header.Set("Accept-Encoding", "gzip")
		return
	}
	out.Header.Del("Accept-Encoding")
}

// acceptsGzip reports whether Accept-Encoding values allow gzip: by name or
// by "*", with a quality above zero.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(item, ";")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "gzip", "x-gzip", "*":
				if !zeroQuality(params) {
					return true
				}
			}
		}
	}
	return false
}

// zeroQuality reports whether the parameters of an Accept-Encoding item
// refuse it: "q=0", or a q that is not a number.
func zeroQuality(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err != nil || q <= 0
		}
	}
	return false
}
