// main_test.go has what the tests share: goleak, and the day played once.

package demo

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// theDay is the day of seed 1, played once for every test that reads it:
// each play takes two seconds of real time.
var theDay struct {
	once sync.Once
	c    *comparison
	err  error
}

func playDay(t *testing.T) *comparison {
	t.Helper()
	theDay.once.Do(func() { theDay.c, theDay.err = play(context.Background(), 1) })
	require.NoError(t, theDay.err)
	return theDay.c
}
