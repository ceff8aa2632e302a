package credpool

import (
	"strconv"
	"strings"
)

// redact returns a label that lets an operator tell keys apart without
// revealing them: the key's scheme prefix (such as "sk-proj-" or "ghp_") and
// its last four characters. Never more than a quarter of the key is shown: a
// prefix too long for that is cut back to its first separator ("sk-"), or
// dropped, and a key under 16 bytes shows nothing.
func redact(key string) string {
	const ellipsis = "…"
	if len(key) < 16 {
		return ellipsis
	}
	tail := key[len(key)-4:]
	budget := len(key)/4 - len(tail)
	prefix := schemePrefix(key)
	if len(prefix) > budget {
		prefix = prefix[:strings.IndexAny(prefix, "-_")+1]
	}
	if len(prefix) > budget {
		prefix = ""
	}
	return prefix + ellipsis + tail
}

// schemePrefix returns the leading letters and separators that name a key's
// kind, up to its last separator within the first 8 bytes: "sk-proj-" for
// "sk-proj-…", "sk-ant-" for "sk-ant-api03-…", "ghp_" for "ghp_…", and ""
// for keys with no separator there, such as Google's "AIza…".
func schemePrefix(key string) string {
	end := 0
	for i := 0; i < len(key) && i < 8; i++ {
		c := key[i]
		switch {
		case c == '-' || c == '_':
			end = i + 1
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		default:
			return key[:end]
		}
	}
	return key[:end]
}

// labels redacts every key and makes the labels unique, appending the index
// to any label that two keys share, so that a status table never shows two
// rows that look like the same key and a metric never merges two keys'
// series. Should the suffixed label be some other key's too (a short key's
// "…#100" and a key ending in "#100"), the index is appended again.
func labels(keys []string) []string {
	out := make([]string, len(keys))
	count := make(map[string]int, len(keys))
	for i, k := range keys {
		out[i] = redact(k)
		count[out[i]]++
	}
	for i, l := range out {
		if count[l] == 1 {
			continue
		}
		suffix := "#" + strconv.Itoa(i)
		l += suffix
		for count[l] > 0 {
			l += suffix
		}
		out[i] = l
		count[l]++
	}
	return out
}
