// color.go decides whether the terminal gets colours, and paints them.

package demo

import (
	"io"
	"os"
)

// UseColor reports whether output to w may carry ANSI colours: only when w is
// a terminal, NO_COLOR is unset or empty (https://no-color.org) and TERM is
// not "dumb". A file, a pipe or a buffer gets plain characters.
func UseColor(w io.Writer) bool {
	return colorFor(isTerminal(w), os.Getenv)
}

// colorFor is UseColor's rule, given whether the output is a terminal and
// the environment.
func colorFor(terminal bool, getenv func(string) string) bool {
	return terminal && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}

// isTerminal reports whether w is a character device, as a terminal is. It
// needs no dependency: os.File's mode says so.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// ANSI colours, by what they mark.
const (
	ansiReset  = "\033[0m"
	ansiBold   = "\033[1m"
	ansiGreen  = "\033[32m"
	ansiYellow = "\033[33m"
	ansiGrey   = "\033[90m"
	ansiRed    = "\033[1;31m"
)

// painter colours text, or leaves it plain.
type painter bool

// paint wraps s in the colour code, if colours are on.
func (p painter) paint(code, s string) string {
	if !p || s == "" {
		return s
	}
	return code + s + ansiReset
}
