// size.go parses sizes in bytes for flags: "64MiB", "500KB", "1048576".

package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the units a size may have, each with its bytes.
var sizeUnits = []struct {
	name  string
	bytes int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// byteSize is a flag.Value for a size in bytes: a whole number, with an
// optional unit, B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of
// 1024), in any case.
type byteSize int64

// Set implements flag.Value.
func (s *byteSize) Set(v string) error {
	v = strings.TrimSpace(v)
	digits := len(v) - len(strings.TrimLeft(v, "0123456789"))
	num, unit := v[:digits], strings.TrimSpace(v[digits:])
	if num == "" || strings.ContainsAny(unit, "0123456789.,-+") {
		return errors.New("not a whole number of bytes, with an optional unit, e.g. 64MiB")
	}
	mult, ok := int64(1), unit == ""
	for _, u := range sizeUnits {
		if strings.EqualFold(unit, u.name) {
			mult, ok = u.bytes, true
		}
	}
	if !ok {
		return fmt.Errorf("unknown unit %q; use B, KB, MB, GB, KiB, MiB or GiB", unit)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return errors.New("too large")
	}
	*s = byteSize(n * mult)
	return nil
}

// String implements flag.Value: in the largest binary unit that divides the
// size, as help shows a default.
func (s *byteSize) String() string {
	n := int64(*s)
	for _, u := range sizeUnits[:3] {
		if n != 0 && n%u.bytes == 0 {
			return strconv.FormatInt(n/u.bytes, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}
