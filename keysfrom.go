package credpool

import (
	"fmt"
	"os"
	"strings"
)

// KeysFromEnv reads keys from the environment variable name: one per line or
// comma-separated, blanks ignored, each key's surrounding quotes (as .env
// files write them) removed. Keys belong in the environment or a file, never
// in a command line, where ps shows them to every user. Errors name the
// variable and a key's position in it, never a value.
func KeysFromEnv(name string) ([]string, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return nil, fmt.Errorf("credpool: environment variable %s is not set", name)
	}
	return readKeys(v, "environment variable "+name)
}

// KeysFromFile reads keys from the file at path: one per line or
// comma-separated; blank lines and lines starting with # are ignored, as are
// a UTF-8 byte order mark and each key's surrounding quotes. A bad key is
// named by its line, never by its value.
func KeysFromFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credpool: reading keys: %w", err)
	}
	return readKeys(string(data), path)
}

// readKeys splits a list of keys from source on line breaks and commas,
// trimming surrounding spaces and quotes and skipping blanks and # comments,
// and checks each as New does, naming a bad one by its line.
func readKeys(s, source string) ([]string, error) {
	s = strings.TrimPrefix(s, "\uFEFF")
	var keys []string
	lineOf := map[string]int{}
	for n, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, k := range strings.Split(line, ",") {
			k = unquote(strings.TrimSpace(k))
			if k == "" {
				continue
			}
			if problem := keyProblem(k); problem != "" {
				return nil, fmt.Errorf("%w: %s line %d: the key %s", ErrInvalidKey, source, n+1, problem)
			}
			if first, dup := lineOf[k]; dup {
				return nil, fmt.Errorf("%w: %s line %d: the key repeats the key on line %d", ErrInvalidKey, source, n+1, first)
			}
			lineOf[k] = n + 1
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("credpool: %s holds no keys", source)
	}
	return keys, nil
}

// unquote removes one pair of matching quotes around k.
func unquote(k string) string {
	if len(k) >= 2 && (k[0] == '"' || k[0] == '\'') && k[len(k)-1] == k[0] {
		return strings.TrimSpace(k[1 : len(k)-1])
	}
	return k
}
