// scenario.go is what happens during the simulated day: the traffic, what
// befalls each key, and when the provider is overloaded. Both pools meet the
// same day; the seed only decides which attempts an overload fails.

package demo

import (
	"math/rand/v2"
	"net/http"
	"time"
)

// scenario is the simulated day.
type scenario struct {
	seed     uint64
	every    time.Duration // one request every
	requests int

	revokedAt  time.Duration // the revoked key answers 401 from then on
	quotaOut   time.Duration // the out-of-credit key answers 429 insufficient_quota from then
	quotaBack  time.Duration // until its credit renews, at midnight
	limits     []window      // the rate-limited key answers 429 with Retry-After in each
	overloads  []overload    // provider-wide
	revokedKey int           // indexes in demoKeys
	quotaKey   int
	limitedKey int
}

// window is a stretch of the day, from its start up to its end.
type window struct{ from, to time.Duration }

func (w window) holds(t time.Duration) bool { return t >= w.from && t < w.to }

// overload is a stretch of the day when the provider answers some attempts,
// whatever their key, with an overload status.
type overload struct {
	window
	status int
	odds   float64 // of each attempt failing
}

// newScenario returns the demo's day. The times are fixed, so the day reads
// the same for every seed; see docs/demo.md.
func newScenario(seed uint64) *scenario {
	return &scenario{
		seed:      seed,
		every:     time.Minute,
		requests:  int(dayLen / time.Minute),
		revokedAt: at(7, 30),
		quotaOut:  at(10, 0),
		quotaBack: at(0, 0),
		limits: []window{
			{at(9, 10), at(9, 25)}, {at(12, 40), at(12, 55)}, {at(15, 20), at(15, 50)},
			{at(19, 5), at(19, 20)}, {at(22, 30), at(22, 45)},
		},
		overloads: []overload{
			{window{at(11, 0), at(11, 45)}, 529, 0.5},
			{window{at(17, 30), at(18, 0)}, http.StatusServiceUnavailable, 0.4},
			{window{at(2, 0), at(2, 20)}, 529, 0.6},
		},
		revokedKey: indexOf(revoked),
		quotaKey:   indexOf(noQuota),
		limitedKey: indexOf(rateLimited),
	}
}

// sendAt returns when request n is sent.
func (s *scenario) sendAt(n int) time.Duration { return time.Duration(n) * s.every }

// keyTrouble returns how the provider refuses key i at moment t, whatever
// the request: a status and body, and for a rate limit how long until the
// window ends; status 0 when it does not.
func (s *scenario) keyTrouble(i int, t time.Duration) (status int, body string, retryAfter time.Duration) {
	switch {
	case i == s.revokedKey && t >= s.revokedAt:
		return http.StatusUnauthorized, revokedBody, 0
	case i == s.quotaKey && t >= s.quotaOut && t < s.quotaBack:
		return http.StatusTooManyRequests, noQuotaBody, 0
	case i == s.limitedKey:
		for _, w := range s.limits {
			if w.holds(t) {
				return http.StatusTooManyRequests, dayRateLimitBody, w.to - t
			}
		}
	}
	return 0, "", 0
}

// overloaded returns the overload status that the draw-th attempt of
// request n, on a key in good standing, meets; 0 when it meets none. Each
// request has its own luck, drawn from the seed, so an attempt's fate does
// not depend on which key it took, nor on what other requests did: both
// pools get the same luck for the same try of the same request.
func (s *scenario) overloaded(n, draw int) int {
	t := s.sendAt(n)
	for _, o := range s.overloads {
		if o.holds(t) {
			luck := rand.New(rand.NewPCG(s.seed, uint64(n)<<8|uint64(draw)))
			if luck.Float64() < o.odds {
				return o.status
			}
			return 0
		}
	}
	return 0
}
