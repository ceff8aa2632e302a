package credpool

// Quota groups: keys of one account or project share that account's credit
// and spend limits. When the provider says, by its code or status, that the
// account is out of credit, every key of the group is out too, and probing
// each one in turn costs a failed request per key. A billing verdict whose
// evidence is account-wide (accountWide in classify.go) therefore cools the
// whole group at once (pool.coolGroup); a verdict on one key's own limit,
// a revocation or a rate limit stays with that key.

// WithGroups puts the keys in quota groups: groups[i] names the account or
// project of the key at index i (its position in the slice given to New),
// "" for a key in no group. When a key's provider answers that the account
// is out of credit or over its spend limit (OpenAI's insufficient_quota and
// organization or project spend limits, Anthropic's credit balance, a 402),
// every key of its group cools with it, until the same time. New refuses a
// list whose length is not the number of keys.
func WithGroups(groups ...string) KeyOption {
	return keyOptionFunc(func(c *config) { c.groups = append([]string(nil), groups...) })
}

// groupIDs numbers the groups, in order of first appearance; -1 for a key in
// none. With no groups, every key is in none.
func groupIDs(groups []string, n int) []int {
	ids := make([]int, n)
	seen := map[string]int{}
	for i := range ids {
		ids[i] = -1
		if i >= len(groups) || groups[i] == "" {
			continue
		}
		id, ok := seen[groups[i]]
		if !ok {
			id = len(seen)
			seen[groups[i]] = id
		}
		ids[i] = id
	}
	return ids
}
