// keys.go has the made-up keys both demos use, and what each stands for.

package demo

import "slices"

// keyKind is what happens to a key: the simulated providers answer by it.
type keyKind int

const (
	revoked     keyKind = iota // revoked: 401 invalid_api_key
	noQuota                    // out of credit: 429 insufficient_quota
	rateLimited                // now and then 429 rate_limit_exceeded
	healthy                    // 200, save for the provider's overloads
)

// demoKey is a made-up key and what happens to it. The keys are obviously
// fake; their labels come out as "sk-…" and the last four characters, which
// say which key is which.
type demoKey struct {
	key  string
	kind keyKind
}

var demoKeys = []demoKey{
	{"sk-demo1-fake-key-revoked-0000-REVK", revoked},
	{"sk-demo2-fake-key-noquota-0000-QUOT", noQuota},
	{"sk-demo3-fake-key-limited-0000-RATE", rateLimited},
	{"sk-demo4-fake-key-healthy-0000-OK01", healthy},
	{"sk-demo5-fake-key-healthy-0000-OK02", healthy},
}

// keyStrings returns the demo keys, in order, as credpool.New takes them.
func keyStrings() []string {
	keys := make([]string, len(demoKeys))
	for i, k := range demoKeys {
		keys[i] = k.key
	}
	return keys
}

// indexOf returns the position of the first demo key of kind k.
func indexOf(k keyKind) int {
	return slices.IndexFunc(demoKeys, func(d demoKey) bool { return d.kind == k })
}

// keyIndex maps each demo key to its position, for the providers.
func keyIndex() map[string]int {
	m := make(map[string]int, len(demoKeys))
	for i, k := range demoKeys {
		m[k.key] = i
	}
	return m
}
