package credpool

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNoKeys is returned, wrapped in a *NoKeysError, when no key can be used
// for a request and the soonest reset is too far away to wait for. Test for it
// with errors.Is.
var ErrNoKeys = errors.New("credpool: no usable key")

// ErrInvalidKey is wrapped by the errors New returns for keys it refuses.
// Test for it with errors.Is; errors.As with a *KeyError gives the index.
var ErrInvalidKey = errors.New("credpool: invalid key")

// ErrInvalidOption is wrapped by the errors New returns for options it
// refuses, such as a negative limit or a nil base transport.
var ErrInvalidOption = errors.New("credpool: invalid option")

// KeyError reports a key that New or SetKeys refused. It names the key by
// its index in the slice given to them and never contains the key.
type KeyError struct {
	Index   int    // position of the key in the slice given to New or SetKeys
	Problem string // what is wrong with it, e.g. "is empty"
}

// Error implements error.
func (e *KeyError) Error() string {
	return fmt.Sprintf("credpool: key %d %s", e.Index, e.Problem)
}

// Unwrap makes errors.Is(err, ErrInvalidKey) true.
func (e *KeyError) Unwrap() error { return ErrInvalidKey }

// NoKeysError is the error returned when no key can be used. It says how many
// keys are in each state and when the soonest cooling key returns, which is
// usually all an operator needs to tell a revoked pool from a busy one.
type NoKeysError struct {
	OK, Exhausted, Dead, Disabled int       // keys per state when the request gave up
	AtLimit                       int       // of the OK keys, those at their WithKeyLimits limit
	SoonestReset                  time.Time // when the first exhausted key returns; zero if none will
	Suspect                       string    // a likely misconfiguration, when the outage guard saw one
	roomAt                        time.Time // when a full key's rate next makes room; zero if only a release will
}

// Error implements error.
func (e *NoKeysError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "credpool: no usable key (%d ok, %d exhausted, %d dead", e.OK, e.Exhausted, e.Dead)
	if e.Disabled > 0 {
		fmt.Fprintf(&b, ", %d disabled", e.Disabled)
	}
	if e.AtLimit > 0 {
		fmt.Fprintf(&b, "; %d at their limit", e.AtLimit)
	}
	if !e.SoonestReset.IsZero() {
		fmt.Fprintf(&b, "; soonest reset at %s", e.SoonestReset.UTC().Format(time.RFC3339))
	}
	b.WriteString(")")
	if e.Suspect != "" {
		b.WriteString(": ")
		b.WriteString(e.Suspect)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNoKeys) true.
func (e *NoKeysError) Is(target error) bool { return target == ErrNoKeys }
