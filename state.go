package credpool

import "time"

// State is where a key stands in the pool's rotation.
type State string

// The states a key moves between. StateDead is terminal: only a person
// revives a dead key (Reset, ResetKey), or a re-check the person asked for
// (WithRecheck), because a revoked key that re-enters rotation after a
// cooldown fails a user request every time it does. StateDisabled is an
// operator's decision (DisableKey), which nothing but EnableKey reverses.
const (
	StateOK        State = "ok"        // in rotation
	StateExhausted State = "exhausted" // cooling until ResetAt, then back in rotation
	StateDead      State = "dead"      // out of rotation until Reset or a re-check's success
	StateDisabled  State = "disabled"  // out of rotation until EnableKey
)

// Reason says why an attempt failed and, for the reasons that move a key out of
// rotation, why the key left StateOK.
type Reason string

// The reasons an attempt can fail. The first four take the key out of rotation
// and the request moves to another key at once; the next three are the
// provider's trouble, so the request is retried after a backoff and the key is
// not punished; ReasonClientError is the caller's trouble and the response is
// handed back untouched.
const (
	ReasonAuthPermanent Reason = "auth_permanent" // revoked, invalid or deactivated key: StateDead
	ReasonAuth          Reason = "auth"           // other 401/403: cooled (default 5 min)
	ReasonBilling       Reason = "billing"        // quota or credit exhausted: cooled (default 1 h)
	ReasonRateLimit     Reason = "rate_limit"     // 429: cooled until the provider's reset (default 60 s)
	ReasonOverloaded    Reason = "overloaded"     // 529, "overloaded": backoff, then retry
	ReasonServerError   Reason = "server_error"   // other 5xx: backoff, then retry
	ReasonTransport     Reason = "transport"      // a network error worth retrying: backoff, then retry
	ReasonClientError   Reason = "client_error"   // other 4xx: handed back, no retry, no penalty
)

// KeyStatus is a snapshot of one key, as returned by Transport.Status. It
// carries a redacted label, never the key itself, so it is safe to log or
// serve on a status page.
type KeyStatus struct {
	Label    string    // redacted, e.g. "sk-…Q7x9"; never the whole key
	State    State     // where the key stands now
	Reason   Reason    // why the key last left StateOK; empty while it never has
	ResetAt  time.Time // when an exhausted key returns; zero otherwise
	Requests uint64    // attempts sent with this key
	Failures uint64    // attempts with this key that failed

	// Remaining is the provider's last count of requests left in the current
	// window (x-ratelimit-remaining-requests, anthropic-ratelimit-requests-
	// remaining, GitHub's x-ratelimit-remaining); -1 while none was seen.
	Remaining int64

	// Strikes counts the cooldowns in a row after which the key's first
	// attempt failed again for the same reason. Each doubles the key's next
	// cooldown, up to WithMaxCooldown, so a key that never works again, for
	// a reason no table names, is probed a few times a day; a success clears
	// it.
	Strikes int
}

// StateChange describes a key moving from one state to another. It is passed
// to the WithOnStateChange callback and logged through WithLogger.
type StateChange struct {
	Index   int       // position of the key in the slice given to New, or to the last SetKeys
	Label   string    // redacted label of the key
	From    State     // state before the change
	To      State     // state after the change
	Reason  Reason    // why; empty when a cooldown ended or Reset was called
	Status  int       // HTTP status that caused the change; 0 when none did
	ResetAt time.Time // when the key returns, for StateExhausted; zero otherwise

	// Suspect is set when the pool did not kill the key although the provider
	// rejected it, because every key was rejected in one burst: more likely a
	// wrong base URL or auth header, or a provider outage, than a pool of
	// revoked keys. The key cools instead, and a success clears the suspicion.
	Suspect string
}
