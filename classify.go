package credpool

import (
	"context"
	"net/http"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// verdict is the classifier's decision on one error response.
type verdict struct {
	reason Reason
	hint   time.Duration // the provider's wait hint, unclamped
	hinted bool          // whether the provider gave one
}

// classify decides what an error response (status >= 400) means for the key
// that was sent and for the request. The body is read once into errorInfo;
// its codes and messages decide first, the status last, because providers
// report dead keys and exhausted credit on 400, 402, 403 and 429 alike.
func classify(status int, h http.Header, body []byte, now time.Time) verdict {
	info := parseError(body)
	v := verdict{reason: reasonFor(status, &info)}
	v.hint, v.hinted = retryAfter(h, now)
	return v
}

func reasonFor(status int, info *errorInfo) Reason {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		switch {
		case info.matches(deadKey):
			return ReasonAuthPermanent
		case info.matches(billing):
			return ReasonBilling
		}
		return ReasonAuth
	case status == http.StatusPaymentRequired || info.matches(billing):
		return ReasonBilling
	case status == http.StatusTooManyRequests:
		return ReasonRateLimit
	case status == 529 || (status >= 500 && info.matches(overloaded)):
		return ReasonOverloaded
	case serverTrouble(status):
		return ReasonServerError
	}
	return ReasonClientError
}

// serverTrouble reports whether a status is worth a retry after a backoff, by
// go-retryablehttp's policy: 5xx except 501 Not Implemented, which no retry
// can fix.
func serverTrouble(status int) bool {
	retry, _ := retryablehttp.DefaultRetryPolicy(context.Background(), &http.Response{StatusCode: status}, nil)
	return retry && status != http.StatusTooManyRequests
}
