package credpool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyQuotingError is a base's own error type that quotes the request's
// Authorization header, as a careless middleware might.
type keyQuotingError struct{ header string }

func (e *keyQuotingError) Error() string { return "refused header " + e.header }

// TestErrorChainIsScrubbed: no level of a transport error's chain holds the
// key, as written or URL-escaped, whether reached by errors.Unwrap, by
// errors.As or by the text; errors.Is still finds the causes.
func TestErrorChainIsScrubbed(t *testing.T) {
	timeout := &net.OpError{Op: "dial", Net: "tcp", Err: context.DeadlineExceeded}
	bases := map[string]func(r *http.Request) error{
		"url error with the key in the query": func(r *http.Request) error {
			return &url.Error{Op: "Post", URL: "http://api.test/?key=" + url.QueryEscape(keyA), Err: errBoom}
		},
		"wrapped own type quoting the header": func(r *http.Request) error {
			return fmt.Errorf("middleware: %w", &keyQuotingError{header: r.Header.Get("Authorization")})
		},
		"joined errors": func(r *http.Request) error {
			return errors.Join(errBoom, fmt.Errorf("sent %s: %w", r.Header.Get("Authorization"), timeout))
		},
		"path-escaped key": func(r *http.Request) error {
			return fmt.Errorf("GET /v1/keys/%s: %w", url.PathEscape(keyA+"/x"), errBoom)
		},
	}
	for name, fail := range bases {
		t.Run(name, func(t *testing.T) {
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) { return nil, fail(r) })
			tr := newTransport(t, []string{keyA}, WithBase(base), WithMaxRetries(0))
			_, err := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
			require.Error(t, err)
			for e := err; e != nil; e = errors.Unwrap(e) {
				assertNoSecret(t, fmt.Sprintf("%T in the chain", e), e.Error(), keyA)
				if j, ok := e.(interface{ Unwrap() []error }); ok {
					for _, inner := range j.Unwrap() {
						for ; inner != nil; inner = errors.Unwrap(inner) {
							assertNoSecret(t, "a joined error", inner.Error(), keyA)
						}
					}
				}
			}
			var ue *url.Error
			if errors.As(err, &ue) {
				assertNoSecret(t, "errors.As *url.Error", ue.Error(), keyA)
			}
			var own *keyQuotingError
			assert.False(t, errors.As(err, &own), "an error whose text holds the key is not handed out")
		})
	}
	t.Run("a key with characters that escape", func(t *testing.T) {
		key := "AzUr3+k3y/with=signs+0123456789abcdef"
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return nil, fmt.Errorf("GET /?k=%s and /k/%s: %w", url.QueryEscape(key), url.PathEscape(key), errBoom)
		})
		tr := newTransport(t, []string{key}, WithBase(base), WithMaxRetries(0))
		_, err := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
		require.Error(t, err)
		for e := err; e != nil; e = errors.Unwrap(e) {
			for _, form := range []string{key, url.QueryEscape(key), url.PathEscape(key)} {
				assert.NotContains(t, e.Error(), form[:len(form)-4])
			}
		}
	})
	t.Run("causes are still found", func(t *testing.T) {
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return nil, errors.Join(errBoom, fmt.Errorf("sent %s: %w", r.Header.Get("Authorization"), timeout))
		})
		tr := newTransport(t, []string{keyA}, WithBase(base), WithMaxRetries(0))
		_, err := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
		assert.ErrorIs(t, err, errBoom)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		var op *net.OpError
		require.ErrorAs(t, err, &op, "an error whose text holds no key is handed out")
		assert.Equal(t, "dial", op.Op)
	})
}
