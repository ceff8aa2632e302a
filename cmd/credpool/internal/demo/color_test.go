// color_test.go tests when the terminal gets colours: only on a terminal,
// without NO_COLOR, with a TERM that can show them.

package demo

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestColorFor(t *testing.T) {
	tests := []struct {
		name     string
		terminal bool
		env      map[string]string
		want     bool
	}{
		{"terminal", true, map[string]string{"TERM": "xterm-256color"}, true},
		{"terminal, no TERM", true, nil, true},
		{"not a terminal", false, map[string]string{"TERM": "xterm-256color"}, false},
		{"NO_COLOR", true, map[string]string{"NO_COLOR": "1", "TERM": "xterm"}, false},
		{"NO_COLOR empty is unset", true, map[string]string{"NO_COLOR": ""}, true},
		{"dumb terminal", true, map[string]string{"TERM": "dumb"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, colorFor(tt.terminal, func(k string) string { return tt.env[k] }))
		})
	}
}

func TestUseColorOffATerminal(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "xterm-256color")
	assert.False(t, UseColor(new(bytes.Buffer)), "a buffer")
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	assert.False(t, UseColor(w), "a pipe")
	f, err := os.Create(t.TempDir() + "/out.txt")
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, UseColor(f), "a file")
}

// TestUseColorOnACharDevice uses the null device, which is a character
// device as a terminal is: there, only NO_COLOR and TERM=dumb turn colours
// off.
func TestUseColorOnACharDevice(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	if !isTerminal(f) {
		t.Skipf("%s is not a character device here", os.DevNull)
	}
	tests := []struct {
		noColor, term string
		want          bool
	}{
		{"", "xterm-256color", true},
		{"1", "xterm-256color", false},
		{"", "dumb", false},
	}
	for _, tt := range tests {
		t.Setenv("NO_COLOR", tt.noColor)
		t.Setenv("TERM", tt.term)
		assert.Equal(t, tt.want, UseColor(f), "NO_COLOR=%q TERM=%q", tt.noColor, tt.term)
	}
}
