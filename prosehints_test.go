package credpool

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestProseWait(t *testing.T) {
	cases := []struct {
		msg  string
		want time.Duration
		ok   bool
	}{
		{msg: "please try again in 26.604s. visit https://platform.openai.com", want: 26604 * time.Millisecond, ok: true},
		{msg: "please try again in 9m38.016s.", want: 9*time.Minute + 38016*time.Millisecond, ok: true},
		{msg: "please retry in 10.673410956s.", want: 10673410956, ok: true},
		{msg: "rate limit is exceeded. try again in 50 seconds.", want: 50 * time.Second, ok: true},
		{msg: "please retry after 86400 seconds.", want: 24 * time.Hour, ok: true},
		{msg: "try again in 2 minutes", want: 2 * time.Minute, ok: true},
		{msg: "usage limit reached. resets in 6hr 29min.", want: 6*time.Hour + 29*time.Minute, ok: true},
		{msg: "the model will be available in 42 minutes", want: 42 * time.Minute, ok: true},
		{msg: "limit hit: resets in 1 hour and 5 minutes", want: time.Hour + 5*time.Minute, ok: true},
		{msg: "please wait 30 seconds before retrying", want: 30 * time.Second, ok: true},
		{msg: "retry after 20", want: 20 * time.Second, ok: true},
		{msg: "daily quota exhausted. it resets at midnight utc.", want: 12 * time.Hour, ok: true},
		{msg: "you have used today's allowance, try again tomorrow", want: 12 * time.Hour, ok: true},
		{msg: "monthly quota reached; resets next month", want: 31*24*time.Hour - 12*time.Hour, ok: true},
		{msg: "you will regain access on 2026-04-01 at 00:00 utc.", want: 732 * time.Hour, ok: true},
		{msg: "limit resets at 2026-03-01t18:30:00z", want: 6*time.Hour + 30*time.Minute, ok: true},
		{msg: "quota will be replenished in 00:01:09.", want: 69 * time.Second, ok: true},
		{msg: "quota will be replenished in 2.04:22:11.", want: 52*time.Hour + 22*time.Minute + 11*time.Second, ok: true},
		{msg: "try again in 30s, or wait: resets in 2h", want: 2 * time.Hour, ok: true},
		{msg: "try again later", ok: false},
		{msg: "retry after 20 requests", ok: false},
		{msg: "try again in a few minutes", ok: false},
	}
	for _, tc := range cases {
		t.Run(tc.msg, func(t *testing.T) {
			p := readProse(tc.msg)
			got, ok := proseWait(&p, testNow, nil)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestProseWaitSkipsTheCallersWords: a wait stated in quoted text, or in
// words the request itself carries, is the caller's, and costs no key a
// longer cooldown.
func TestProseWaitSkipsTheCallersWords(t *testing.T) {
	p := readProse("the model `x. you will regain access on 2099-01-01 at 00:00 utc` does not exist")
	_, ok := proseWait(&p, testNow, nil)
	assert.False(t, ok, "quoted")

	p = readProse("invalid value: x. please retry after 86400 seconds. is not a role")
	echoed := func(phrase string) bool { return containsPhrase(words("x. please retry after 86400 seconds."), phrase) }
	_, ok = proseWait(&p, testNow, echoed)
	assert.False(t, ok, "echoed")
}
