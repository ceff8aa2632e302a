package credpool

import (
	"fmt"
	"os"
	"strings"
)

// KeysFromEnv reads keys from the environment variable name: one per line or
// comma-separated, blanks ignored. Keys belong in the environment or a file,
// never in a command line, where ps shows them to every user. Errors name
// the variable, never a value.
func KeysFromEnv(name string) ([]string, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return nil, fmt.Errorf("credpool: environment variable %s is not set", name)
	}
	keys := splitKeys(v)
	if len(keys) == 0 {
		return nil, fmt.Errorf("credpool: environment variable %s holds no keys", name)
	}
	return keys, nil
}

// KeysFromFile reads keys from the file at path: one per line or
// comma-separated; blank lines and lines starting with # are ignored.
func KeysFromFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credpool: reading keys: %w", err)
	}
	keys := splitKeys(string(data))
	if len(keys) == 0 {
		return nil, fmt.Errorf("credpool: %s holds no keys", path)
	}
	return keys, nil
}

// splitKeys splits a list of keys on line breaks and commas, trimming
// surrounding spaces and skipping blanks and # comments. Spaces inside a key
// are left for New to refuse, by index.
func splitKeys(s string) []string {
	var keys []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, k := range strings.Split(line, ",") {
			if k = strings.TrimSpace(k); k != "" {
				keys = append(keys, k)
			}
		}
	}
	return keys
}
