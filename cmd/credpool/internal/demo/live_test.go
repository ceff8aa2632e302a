// live_test.go runs the live demo whole.

package demo

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLive(t *testing.T) {
	var out, progress bytes.Buffer
	err := Live(t.Context(), LiveOptions{Requests: 60, Concurrency: 8}, &out, &progress)
	require.NoError(t, err, "%s\n%s", out.String(), progress.String())
	assert.Contains(t, out.String(), "OK: revoked key sk-…REVK is dead")
	assert.Regexp(t, `(?m)^sk-…REVK\s+dead\s+auth_permanent`, out.String())
	assert.Contains(t, out.String(), "succeeded:")
	assert.Contains(t, progress.String(), "progress: 60/60 done")
}

func TestLiveRefusesNoRequests(t *testing.T) {
	for _, o := range []LiveOptions{{Requests: 0, Concurrency: 1}, {Requests: 1, Concurrency: 0}} {
		assert.Error(t, Live(t.Context(), o, new(bytes.Buffer), new(bytes.Buffer)))
	}
}
