package human

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestWait(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{d: -time.Second, want: "now"},
		{d: 0, want: "now"},
		{d: 10 * time.Millisecond, want: "0.1s"},
		{d: 2340 * time.Millisecond, want: "2.4s"},
		{d: 10 * time.Second, want: "10s"},
		{d: 4*time.Minute + 59900*time.Millisecond, want: "4m59s"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, Wait(tc.d), "%v", tc.d)
	}
}

func TestPlural(t *testing.T) {
	assert.Equal(t, "0 keys", Plural(0, "key"))
	assert.Equal(t, "1 key", Plural(1, "key"))
	assert.Equal(t, "300 requests", Plural(300, "request"))
}

func TestCells(t *testing.T) {
	r, in := Cells("", time.Time{})
	assert.Equal(t, []string{"-", "-"}, []string{r, in})
	r, in = Cells("rate_limit", time.Now().Add(time.Minute))
	assert.Equal(t, "rate_limit", r)
	assert.Regexp(t, `^(59|1m0)s?`, in)
}
