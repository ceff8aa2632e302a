package credpool

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// A way back for dead keys, without guessing: dead means dead, and a person
// decides to revive a key. WithRecheck is that decision taken in advance, on
// the person's terms: a request they name, a schedule they set, and a key
// back in rotation only on the provider's success.

// WithRecheck re-checks every dead key once per interval, each with one
// request of method to url carrying the key (name one that costs nothing,
// such as GET https://api.openai.com/v1/models), and puts a key back in
// rotation only when its re-check succeeds with a 2xx. Any other answer, or
// none, leaves the key dead. Disabled and cooling keys are never re-checked.
// A preset adds the headers its provider needs (Anthropic's
// anthropic-version); redirects are not followed.
//
// It is off by default. The interval must be a minute or more, and url's
// host one the keys are meant for (see WithHosts). Every re-check is counted
// (Stats.Rechecks, Stats.Revived) and logged at Info by the key's label; a
// key it revives is a StateChange from dead to ok. Close stops it.
func WithRecheck(every time.Duration, method, url string) Option {
	return optionFunc(func(c *config) {
		req, err := http.NewRequest(method, url, nil)
		switch {
		case every < time.Minute:
			c.invalid("WithRecheck: interval %v is under a minute", every)
		case err != nil:
			c.invalid("WithRecheck: %v", err)
		case req.URL.Scheme != "https" && req.URL.Scheme != "http" || req.URL.Host == "":
			c.invalid("WithRecheck: %q is not an absolute http or https URL", req.URL.Redacted())
		case req.URL.User != nil:
			c.invalid("WithRecheck: %s holds credentials: the re-check carries the key it checks", req.URL.Redacted())
		default:
			c.recheck = &recheckSpec{every: every, req: req}
		}
	})
}

// recheckSpec is WithRecheck's schedule, and its request, which each
// re-check sends a copy of.
type recheckSpec struct {
	every time.Duration
	req   *http.Request
}

// recheckTimeout bounds one re-check, so that a provider that never answers
// cannot stall the schedule.
const recheckTimeout = 30 * time.Second

// checkRecheck refuses a re-check to a host the keys are not meant for.
func (t *Transport) checkRecheck() error {
	if req := t.cfg.recheck.req; !t.keyed(req) {
		return fmt.Errorf("%w: WithRecheck: %s is not a host the keys are sent to (WithHosts)",
			ErrInvalidOption, req.URL.Host)
	}
	return nil
}

// rechecker runs the schedule of WithRecheck in one goroutine.
type rechecker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startRecheck(t *Transport) *rechecker {
	ctx, cancel := context.WithCancel(context.Background())
	r := &rechecker{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		timer := time.NewTimer(t.cfg.recheck.every)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			p := t.pool()
			for _, l := range p.dead() {
				if ctx.Err() != nil {
					return
				}
				t.recheckKey(ctx, p, l)
			}
			timer.Reset(t.cfg.recheck.every)
		}
	}()
	return r
}

func (r *rechecker) stop() {
	r.cancel()
	<-r.done
}

// recheckKey sends one re-check of the dead key leased as l, logs it, and
// revives the key if it succeeded.
func (t *Transport) recheckKey(ctx context.Context, p *pool, l lease) {
	ctx, cancel := context.WithTimeout(ctx, recheckTimeout)
	defer cancel()
	t.counters.rechecks.Add(1)
	status, err := t.sendRecheck(ctx, l)
	attrs := []slog.Attr{slog.String("key", p.slots[l.index].label), slog.Int("index", l.index)}
	if err != nil {
		attrs = append(attrs, slog.String("error", t.attemptError(p, l, err).Error()))
	} else {
		attrs = append(attrs, slog.Int("status", status))
	}
	var changes []StateChange
	if err == nil && status >= 200 && status < 300 {
		changes = p.recheckPassed(l)
	}
	if changes != nil {
		t.counters.revived.Add(1)
	}
	t.cfg.logger.LogAttrs(ctx, slog.LevelInfo, "credpool: re-checked a dead key",
		append(attrs, slog.Bool("revived", changes != nil))...)
	for _, c := range changes {
		t.emit(ctx, c)
	}
}

// sendRecheck sends the re-check request with the key of l through the base
// transport, and returns the answer's status. A panic in the base is the
// re-check's error, not the process's end: it runs in the background.
func (t *Transport) sendRecheck(ctx context.Context, l lease) (status int, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &baseFault{fmt.Sprintf("base RoundTripper panicked: %v", p)}
		}
	}()
	req := t.cfg.recheck.req.Clone(ctx)
	for name, values := range t.cfg.recheckHeader {
		req.Header[name] = values
	}
	req.Header[t.cfg.header] = l.value()
	resp, err := heldToContract(t.cfg.base.RoundTrip(req))
	if err != nil {
		return 0, err
	}
	discard(resp)
	return resp.StatusCode, nil
}
