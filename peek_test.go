package credpool

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestErrorBodyHandedBackWhole(t *testing.T) {
	big := strings.Repeat("x", 200<<10) // beyond the 64 KiB read to classify
	p := newProvider(t, func(string, int) reply { return reply{status: 400, body: big} })
	tr := newTransport(t, []string{keyA})
	status, body := get(t, tr, p.URL)
	assert.Equal(t, 400, status)
	assert.Equal(t, len(big), len(body))
}

// TestStalledErrorBody: an upstream that sends an error's headers and then
// stalls its body holds the request no longer than the classifier's wait;
// the verdict then goes by status and headers, and the caller who gets that
// response can still read what comes, or close it.
func TestStalledErrorBody(t *testing.T) {
	// stalled answers a 429 whose body arrives only when release is closed,
	// through a pipe: in memory, so the fake clock runs the classifier's
	// wait (5 s by default) at once.
	stalled := func(r *http.Request, release <-chan struct{}) *http.Response {
		body, w := io.Pipe()
		go func() {
			<-release
			io.WriteString(w, `{"error":{"message":"late"}}`)
			w.Close()
		}()
		resp := answer(r, http.StatusTooManyRequests, "")
		resp.Header.Set("Retry-After", "30")
		resp.Body = body
		return resp
	}
	t.Run("rotates past it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if strings.HasSuffix(r.Header.Get("Authorization"), keyA) {
					return stalled(r, release), nil
				}
				return answer(r, 200, "ok"), nil
			})
			tr := newTransport(t, []string{keyA, keyB}, WithBase(base), WithStrategy(FillFirst))
			start := time.Now()
			status, body := get(t, tr, "http://api.test/")
			assert.Equal(t, 200, status)
			assert.Equal(t, "ok", body)
			assert.Equal(t, 5*time.Second, time.Since(start), "held for the classifier's wait, no longer")
			a := statusOf(t, tr, keyA)
			assert.Equal(t, ReasonRateLimit, a.Reason, "classified by status")
			assert.Equal(t, start.Add(5*time.Second+30*time.Second), a.ResetAt, "and by headers")
		})
	})
	t.Run("hands it back readable", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) { return stalled(r, release), nil })
			tr := newTransport(t, []string{keyA}, WithBase(base), WithMaxWait(0))
			resp, err := tr.RoundTrip(httptestRequest(t, "http://api.test/"))
			require.NoError(t, err)
			assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
			close(release)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, `{"error":{"message":"late"}}`, string(b))
			resp.Body.Close()
		})
	})
}
