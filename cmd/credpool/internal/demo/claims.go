// claims.go is the comparison's verdict: what credpool must have done
// better, checked against what happened.

package demo

import (
	"fmt"
	"net/http"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/human"
)

// claim is one thing the comparison shows, and whether the day bore it out.
type claim struct {
	held bool
	text string
}

// claims checks the comparison's claims: credpool sent the revoked key
// nothing once it was dead, while the naive pool kept at it all day;
// credpool failed fewer requests; the key out of credit came back in
// credpool on the next day.
func (c *comparison) claims() []claim {
	naive, cp := c.score(c.naive), c.score(c.credpool)
	sc := c.sc
	revoked, quota := c.labels[sc.revokedKey], c.labels[sc.quotaKey]

	dead := claim{text: fmt.Sprintf("credpool never killed %s.", revoked)}
	if diedAt, died := death(c.credpool, sc.revokedKey); died {
		after := sentAfterRefusal(c.credpool, sc.revokedKey)
		last := lastRefusal(c.naive, sc.revokedKey)
		dead = claim{
			held: after == 0 && naive.revokedHits > cp.revokedHits && nextDay(last),
			text: fmt.Sprintf("credpool sent %s %s once it was revoked, and %d after it died at %s; the naive pool sent it %d, up to the end of the day (the last at %s).",
				revoked, human.Plural(cp.revokedHits, "request"), after, timeOfDay(diedAt), naive.revokedHits, timeOfDay(last)),
		}
	}

	fewer := claim{
		held: cp.failed < naive.failed,
		text: fmt.Sprintf("credpool failed %d of the %d requests, the naive pool %d.", cp.failed, sc.requests, naive.failed),
	}

	back := claim{text: fmt.Sprintf("%s, out of credit, never came back in credpool.", quota)}
	if t, probes, ok := c.backAt(c.credpool); ok {
		nt, nprobes, _ := c.backAt(c.naive)
		back = claim{held: nextDay(t), text: fmt.Sprintf("%s, out of credit at %s, was back in credpool at %s the next day, after %s; in the naive pool at %s, after %d.",
			quota, timeOfDay(sc.quotaOut), timeOfDay(t), human.Plural(probes, "failed attempt"), timeOfDay(nt), nprobes)}
	}
	return []claim{dead, fewer, back}
}

// held reports whether every claim held.
func (c *comparison) held() bool {
	for _, cl := range c.claims() {
		if !cl.held {
			return false
		}
	}
	return true
}

// death returns when key k died in l, and whether it did.
func death(l *leg, k int) (time.Duration, bool) {
	for _, ch := range l.changes {
		if ch.key == k && ch.state == credpool.StateDead {
			return ch.at, true
		}
	}
	return 0, false
}

// sentAfterRefusal counts the attempts with the revoked key k that reached
// the provider after its first 401: with credpool, whose key dies on that
// 401, there must be none.
func sentAfterRefusal(l *leg, k int) int {
	n, refused := 0, false
	for _, a := range l.attempts {
		switch {
		case a.key != k:
		case refused:
			n++
		case a.status == http.StatusUnauthorized:
			refused = true
		}
	}
	return n
}

// lastRefusal returns when the provider refused key k for the last time.
func lastRefusal(l *leg, k int) time.Duration {
	for i := len(l.attempts) - 1; i >= 0; i-- {
		if a := l.attempts[i]; a.key == k && a.failed() {
			return a.at
		}
	}
	return 0
}

// backAt returns when l first sent the out-of-credit key a request that
// succeeded after its credit ran out (after its first insufficient_quota),
// and how many attempts with it were refused for want of credit before.
func (c *comparison) backAt(l *leg) (t time.Duration, refused int, ok bool) {
	k := c.sc.quotaKey
	for _, a := range l.attempts {
		switch {
		case a.key != k:
		case a.status == http.StatusTooManyRequests:
			refused++
		case refused > 0 && a.status == http.StatusOK:
			return a.at, refused, true
		}
	}
	return 0, refused, false
}
