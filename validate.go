package credpool

import (
	"fmt"
	"strconv"
)

// validateKeys checks every key before any is used. A key with a space, a
// control character or a non-ASCII byte would be rejected by net/http, or
// worse, split a header line, so it is refused here with its index: the key
// itself never appears in the error.
func validateKeys(keys []string) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: no keys given", ErrInvalidKey)
	}
	seen := make(map[string]int, len(keys))
	for i, k := range keys {
		if problem := keyProblem(k); problem != "" {
			return &KeyError{Index: i, Problem: problem}
		}
		if first, dup := seen[k]; dup {
			return &KeyError{Index: i, Problem: "duplicates key " + strconv.Itoa(first)}
		}
		seen[k] = i
	}
	return nil
}

// keyProblem says what is wrong with one key, or "" if nothing is.
func keyProblem(k string) string {
	if k == "" {
		return "is empty"
	}
	for j := 0; j < len(k); j++ {
		if c := k[j]; c <= ' ' || c >= 0x7f {
			return "has a space, control or non-ASCII byte at offset " + strconv.Itoa(j)
		}
		if c := k[j]; c == '"' || c == '\'' {
			return "has a quote at offset " + strconv.Itoa(j) + " (quotes around a key in a file are removed; a stray one is a typo)"
		}
	}
	return ""
}
