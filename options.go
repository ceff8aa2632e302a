package credpool

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Option configures a Transport. Options are applied in order by New, which
// reports the first invalid one as an error wrapping ErrInvalidOption.
type Option interface{ apply(*config) }

// KeyOption is an Option that describes the keys one by one (WithGroups,
// WithTiers, WithWeights, WithKeyLimits): New takes it with the keys, and
// SetKeys with the keys that replace them.
type KeyOption interface {
	Option
	keys()
}

// optionFunc is an Option that configures the whole Transport.
type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// keyOptionFunc is a KeyOption.
type keyOptionFunc func(*config)

func (f keyOptionFunc) apply(c *config) { f(c) }
func (keyOptionFunc) keys()             {}

// config is everything New needs. It is built once and never changed after
// New returns, so RoundTrip reads it without a lock.
type config struct {
	base             http.RoundTripper
	header           string // canonical header name
	prefix           string // prepended to the key, e.g. "Bearer "
	strategy         Strategy
	maxRetries       int
	keyHeader        string // WithKeyHeader: the response header that names the key; "" for none
	keySpec                 // the KeyOptions: the part SetKeys may change
	newBackoff       func() backoff.BackOff
	maxWait          time.Duration
	cooldown         map[Reason]time.Duration
	maxCooldown      time.Duration
	hosts            []string
	logger           *slog.Logger
	onStateChange    func(StateChange)
	maxErrorBody     int64
	errorBodyWait    time.Duration // how long an error body may take to arrive for the classifier
	maxReplayBody    int64
	replayBudget     int64 // for every request in flight together
	classifier       classifier
	drop             string        // a header removed from every attempt, e.g. an SDK's placeholder
	steering         steering      // the headers that report what a key has left
	refresh          Refresher     // nil: keys are static
	recheck          *recheckSpec  // WithRecheck; nil: dead keys stay dead
	recheckHeader    http.Header   // a preset's headers on every re-check, beside the key's
	store            Store         // nil: state is local
	storeLoadTimeout time.Duration // how long New waits for the stored states
	storeResync      time.Duration // how often the stored states are loaded again
	salt             []byte        // of the keys' fingerprints in the store
	err              error         // first invalid option
}

func defaultConfig() *config {
	return &config{
		base:       http.DefaultTransport,
		header:     "Authorization",
		prefix:     "Bearer ",
		strategy:   RoundRobin,
		maxRetries: 3,
		newBackoff: defaultBackoff,
		maxWait:    30 * time.Second,
		cooldown: map[Reason]time.Duration{
			ReasonAuth:      5 * time.Minute,
			ReasonBilling:   time.Hour,
			ReasonRateLimit: time.Minute,
		},
		maxCooldown:      24 * time.Hour,
		logger:           slog.New(slog.DiscardHandler), // nobody listens: no log call formats anything
		maxErrorBody:     64 << 10,
		errorBodyWait:    5 * time.Second,
		maxReplayBody:    10 << 20,
		replayBudget:     256 << 20,
		classifier:       *defaultClassifier,
		steering:         steerAny,
		salt:             defaultSalt,
		storeLoadTimeout: 3 * time.Second,
		storeResync:      30 * time.Second,
	}
}

// defaultBackoff is exponential from 250 ms to 8 s with jitter, like the
// providers' own SDKs. MaxElapsedTime is off: WithMaxRetries and the
// request's context bound the retries, not a clock that silently stops them.
func defaultBackoff() backoff.BackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(250*time.Millisecond),
		backoff.WithMaxInterval(8*time.Second),
		backoff.WithMaxElapsedTime(0),
	)
}

// keySpec is what the KeyOptions say of the keys, one value per key: each
// generation of keys (see SetKeys) has its own.
type keySpec struct {
	groups  []string   // WithGroups: each key's quota group; nil for none
	tiers   []int      // WithTiers: each key's tier; nil for one tier
	weights []float64  // WithWeights: each key's weight; nil for equal weights
	limits  []KeyLimit // WithKeyLimits: one for every key, or one per key; nil for none
}

// checkPerKey checks that every per-key option (WithGroups, WithTiers,
// WithWeights, WithKeyLimits) names one value per key; WithKeyLimits may
// name one for every key.
func (c *config) checkPerKey(keys int) error {
	for _, o := range []struct {
		name      string
		n         int
		set       bool
		oneForAll bool // a single value stands for every key
	}{
		{name: "WithGroups", n: len(c.groups), set: c.groups != nil},
		{name: "WithTiers", n: len(c.tiers), set: c.tiers != nil},
		{name: "WithWeights", n: len(c.weights), set: c.weights != nil},
		{name: "WithKeyLimits", n: len(c.limits), set: c.limits != nil, oneForAll: true},
	} {
		if o.set && o.n != keys && !(o.oneForAll && o.n == 1) {
			return fmt.Errorf("%w: %s: %d values for %d keys", ErrInvalidOption, o.name, o.n, keys)
		}
	}
	return nil
}

// invalid records the first bad option; New returns it.
func (c *config) invalid(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
	}
}

// WithBase sets the RoundTripper that sends each attempt. The default is
// http.DefaultTransport.
func WithBase(base http.RoundTripper) Option {
	return optionFunc(func(c *config) {
		if base == nil {
			c.invalid("WithBase: nil RoundTripper")
			return
		}
		c.base = base
	})
}

// WithHeader sets the header that carries the key and the prefix written
// before it. The default is ("Authorization", "Bearer "); use
// ("x-api-key", "") for APIs that take the raw key. Any value the caller or
// its SDK put in that header is replaced on every attempt.
func WithHeader(name, prefix string) Option {
	return optionFunc(func(c *config) {
		if !httpToken(name) {
			c.invalid("WithHeader: %q is not a header name", name)
			return
		}
		for i := 0; i < len(prefix); i++ {
			if b := prefix[i]; b < 0x20 && b != '\t' || b == 0x7f {
				c.invalid("WithHeader: prefix has control byte %#x at %d", b, i)
				return
			}
		}
		c.header, c.prefix = http.CanonicalHeaderKey(name), prefix
	})
}

// httpToken reports whether s is a token of RFC 9110, as a header name must
// be.
func httpToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// WithStrategy sets how the next key is chosen. The default is RoundRobin.
func WithStrategy(s Strategy) Option {
	return optionFunc(func(c *config) {
		if s < RoundRobin || s > Random {
			c.invalid("WithStrategy: unknown strategy %d", int(s))
			return
		}
		c.strategy = s
	})
}

// WithMaxRetries bounds the retries of one request after a transient failure
// (5xx, 529, a network error), each after a backoff. The default is 3; 0
// turns them off. Moving at once away from a key that died or is cooling is
// not a retry and does not count, but no request ever makes more than
// keys + n + 1 attempts.
func WithMaxRetries(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("WithMaxRetries: %d is negative", n)
			return
		}
		c.maxRetries = min(n, maxRetriesLimit)
	})
}

// maxRetriesLimit is where WithMaxRetries saturates: no request needs more
// retries, and keys + retries must never overflow.
const maxRetriesLimit = 1000

// WithBackoff sets the factory for the backoff between transient retries. It
// is called once per request that needs a retry, because a BackOff holds
// per-request state and is not safe for concurrent use. A BackOff that returns
// backoff.Stop ends the retries.
func WithBackoff(newBackoff func() backoff.BackOff) Option {
	return optionFunc(func(c *config) {
		if newBackoff == nil {
			c.invalid("WithBackoff: nil factory")
			return
		}
		c.newBackoff = newBackoff
	})
}

// WithMaxWait bounds the total time one request spends waiting: for a
// cooling key to return when no key is usable, and in the backoffs a
// provider asks for (Retry-After on a 503). The short backoffs between
// transient retries, which WithMaxRetries bounds, count toward it too. Once
// it is spent, the request gets the provider's last response, or ErrNoKeys
// if it had none. The default is 30 s; 0 never waits for a key. A request
// never waits past its context's deadline: give requests a deadline too.
func WithMaxWait(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("WithMaxWait: negative duration %s", d)
			return
		}
		c.maxWait = d
	})
}

// WithCooldown sets how long a key is cooled for reason when the provider
// gives no reset time. It applies to ReasonAuth (default 5 min),
// ReasonBilling (default 1 h) and ReasonRateLimit (default 60 s); the other
// reasons never cool a key.
func WithCooldown(reason Reason, d time.Duration) Option {
	return optionFunc(func(c *config) {
		if _, ok := c.cooldown[reason]; !ok {
			c.invalid("WithCooldown: reason %q does not cool a key", reason)
			return
		}
		if d <= 0 {
			c.invalid("WithCooldown: %s is not positive", d)
			return
		}
		c.cooldown[reason] = d
	})
}

// WithMaxCooldown clamps every cooldown, the provider's reset hints included,
// so that no hint can lock a key out for days. The default is 24 h.
func WithMaxCooldown(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.invalid("WithMaxCooldown: %s is not positive", d)
			return
		}
		c.maxCooldown = d
	})
}

// WithHosts lists the only hosts that get a key; a request to any other host
// is sent through the base transport as it is, without a key and without
// retries. Each entry is a host name ("api.openai.com"), which matches on any
// port; a host and port ("localhost:8080"), which matches only that port; or a
// wildcard ("*.openai.azure.com"), which matches every subdomain but not the
// domain itself. Matching ignores case.
//
// A redirect keeps the key only on the scheme, host and port where the
// redirect chain started, or to a host and port listed here exactly, and
// never from https to http. Without WithHosts every host gets a key, except a
// redirect that leaves where the chain started.
func WithHosts(hosts ...string) Option {
	return optionFunc(func(c *config) {
		if len(hosts) == 0 {
			c.invalid("WithHosts: no hosts")
			return
		}
		for _, h := range hosts {
			if problem := hostEntry(h); problem != "" {
				c.invalid("WithHosts: %q %s", h, problem)
				return
			}
			c.hosts = append(c.hosts, strings.ToLower(h))
		}
	})
}

// WithLogger sets where state changes are logged, with redacted labels only.
// The default discards them.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l == nil {
			c.invalid("WithLogger: nil logger")
			return
		}
		c.logger = l
	})
}

// WithOnStateChange sets a function called after a key changes state (or,
// while cooling, changes reason), here or, with WithStore, on another
// replica and learnt from the store. It is called outside any lock, on the
// goroutine of the request that caused the change (or of the store's
// watcher), so it may call back into the Transport. Requests run concurrently, so it must be safe for concurrent
// use, and two changes of one key made by different requests may reach it in
// either order; Keys always has the current state. It should return quickly.
func WithOnStateChange(f func(StateChange)) Option {
	return optionFunc(func(c *config) { c.onStateChange = f })
}

// WithMaxErrorBody sets how many bytes of an error response are read to
// classify it. The default is 64 KiB. The caller always gets the whole body
// back, the read part followed by the rest.
func WithMaxErrorBody(n int64) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("WithMaxErrorBody: negative size %d", n)
			return
		}
		c.maxErrorBody = n
	})
}

// WithMaxReplayBody sets how many bytes of a request body without GetBody are
// buffered so the request can be replayed on another key. A larger body is
// sent once, with no retry. The default is 10 MiB; at most 1 GiB.
func WithMaxReplayBody(n int64) Option {
	return optionFunc(func(c *config) {
		if n < 0 || n > maxReplayLimit {
			c.invalid("WithMaxReplayBody: size %d is not between 0 and %d", n, int64(maxReplayLimit))
			return
		}
		c.maxReplayBody = n
	})
}

// maxReplayLimit is the most WithMaxReplayBody buffers of one body.
const maxReplayLimit = 1 << 30

// WithReplayBudget bounds the bytes buffered for replay by every request in
// flight together, so that many large uploads at once cannot exhaust memory.
// A body that does not fit is sent once, as it streams, and gets no retry;
// when one was then needed, the error says so, and a response handed back
// carries the header Credpool-Not-Replayed with the reason. The default is
// 256 MiB; 0 buffers nothing. Bodies with GetBody are not buffered, so they
// do not count.
func WithReplayBudget(n int64) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("WithReplayBudget: negative size %d", n)
			return
		}
		c.replayBudget = min(n, math.MaxInt64/2) // room for a reservation past it, then undone
	})
}
