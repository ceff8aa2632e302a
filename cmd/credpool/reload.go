// reload.go reloads the proxy's keys while it serves: from --keys-file when
// the file changes, which it polls, and on SIGHUP. A reload that cannot be
// applied is logged and refused, and the running keys stay: a proxy never
// has a moment with no keys, nor with keys nobody checked. With --keys-env
// there is nothing to reload, since a process's environment cannot change
// under it, and SIGHUP says so.

package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/proxy"
)

// keysPollEvery is how often the proxy looks at --keys-file for a change: a
// stat, and a read only when the stat changed or is too recent to trust. A
// rotation is rare, and a file is cheap to stat: a change takes effect
// within seconds, at no cost worth counting. It is a variable for the tests.
var keysPollEvery = 2 * time.Second

// racyWindow is how long after a change a file's size and modification
// time cannot tell a second change from the first: on a file system that
// keeps times coarsely, both may show the same. A file changed this recently
// before it was read is read again at each poll until it is older.
const racyWindow = 2 * time.Second

// The triggers of a reload, as the logs name them.
const (
	triggerFile = "file_change"
	triggerHUP  = "SIGHUP"
)

// keyReloader reloads the keys of a running proxy. It runs on one goroutine
// (run), so its fields need no lock.
type keyReloader struct {
	file   string // --keys-file; "" when the keys come from the environment
	env    string // --keys-env, to name in the logs
	set    func([]string, ...credpool.KeyOption) error
	opts   []credpool.KeyOption // the per-key flags, given again on each reload
	perKey []perKeyFlag         // the same, to name the flag a new count does not fit
	log    *slog.Logger

	seen    os.FileInfo // the file at the last poll; nil if it could not be stat'ed
	stat    os.FileInfo // the file at the last poll that read it; nil if it could not be stat'ed
	readAt  time.Time   // when that poll read it
	last    [32]byte    // the outcome of the last read (the keys, or the error): a poll says nothing new twice
	applied [32]byte    // the running keys
}

// reloader returns the reloader of the proxy p, whose running keys are keys.
func (o *proxyOptions) reloader(p *proxy.Server, keys []string, log *slog.Logger) (*keyReloader, error) {
	opts, err := o.perKeyOptions()
	if err != nil {
		return nil, err
	}
	sum := keysSum(keys)
	return &keyReloader{file: o.keys.file, env: o.keys.env, set: p.SetKeys, opts: opts, perKey: o.perKeyFlags(), log: log,
		last: sum, applied: sum}, nil
}

// start runs the reloader until ctx ends, reloading on each signal from hup
// and, with a file, at each keysPollEvery. It returns the function that
// stops it and waits until it has: a reload under way finishes first.
func (r *keyReloader) start(ctx context.Context, hup <-chan os.Signal) (stop func()) {
	var ticks <-chan time.Time // nil: never, for keys from the environment
	var ticker *time.Ticker
	if r.file != "" {
		ticker = time.NewTicker(keysPollEvery)
		ticks = ticker.C
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(ctx, ticks, hup)
	}()
	return func() {
		cancel()
		<-done
		if ticker != nil {
			ticker.Stop()
		}
	}
}

// run polls at each tick and reloads at each signal, until ctx ends.
func (r *keyReloader) run(ctx context.Context, ticks <-chan time.Time, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			r.poll()
		case <-hup:
			r.hangup()
		}
	}
}

// hangup answers SIGHUP: a reload of the file, whether it changed or not, or
// with keys from the environment, a log line saying there is nothing to
// reload.
func (r *keyReloader) hangup() {
	if r.file == "" {
		r.log.LogAttrs(context.Background(), slog.LevelWarn,
			"credpool proxy: SIGHUP: the keys come from the environment, which cannot change under a running process; "+
				"restart the proxy to change them, or serve them from --keys-file to reload them",
			slog.String("keys_env", r.env))
		return
	}
	r.reload(triggerHUP)
}

// poll reloads the file if it may have changed since the last read: its
// identity, size, mode or modification time differ, or it was read too soon
// after its last change to tell (racyWindow). A file whose stat changed since
// the previous poll waits for the next: one being written in place (by a
// shell's redirection, say) is read once it has stopped changing, never half
// written.
func (r *keyReloader) poll() {
	fi, err := os.Stat(r.file)
	settled := err == nil && r.seen != nil && sameFile(fi, r.seen)
	r.seen = fi
	if err == nil && !settled {
		return
	}
	if err == nil && r.stat != nil && sameFile(fi, r.stat) && r.readAt.Sub(fi.ModTime()) > racyWindow {
		return
	}
	r.stat, r.readAt = fi, time.Now() // fi is nil on an error: the next poll reads again
	r.reload(triggerFile)
}

// sameFile reports whether two stats of the file show the same file.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.Mode() == b.Mode() && a.ModTime().Equal(b.ModTime())
}

// reload reads the file and, when it holds keys that are not the running
// ones, makes them the pool's. A file that cannot be read, holds no key or a
// bad one, or whose count does not fit the per-key flags, is refused with a
// log line, and the running keys stay. A poll logs an outcome once, however
// many polls see it again; SIGHUP logs it each time, as its answer.
func (r *keyReloader) reload(trigger string) {
	keys, err := credpool.KeysFromFile(r.file)
	outcome := keysSum(keys)
	if err != nil {
		outcome = sha256.Sum256([]byte("error\x00" + err.Error()))
	}
	if trigger == triggerFile && outcome == r.last {
		return
	}
	r.last = outcome
	ctx := context.Background()
	attrs := []slog.Attr{slog.String("trigger", trigger), slog.String("file", r.file)}
	switch {
	case err != nil:
		// The library's errors name the file and a bad key's line, never
		// a key.
		r.refuse(attrs, err)
	case outcome == r.applied:
		r.log.LogAttrs(ctx, slog.LevelInfo, "credpool proxy: keys unchanged", append(attrs, slog.Int("keys", len(keys)))...)
	default:
		if err := r.fits(len(keys)); err != nil {
			r.refuse(attrs, err)
			return
		}
		// SetKeys logs the keys added and removed, by label.
		if err := r.set(keys, r.opts...); err != nil {
			r.refuse(attrs, err)
			return
		}
		r.applied = outcome
		r.log.LogAttrs(ctx, slog.LevelInfo, "credpool proxy: keys reloaded", append(attrs, slog.Int("keys", len(keys)))...)
	}
}

// refuse logs why a reload was refused.
func (r *keyReloader) refuse(attrs []slog.Attr, err error) {
	r.log.LogAttrs(context.Background(), slog.LevelWarn, "credpool proxy: keys not reloaded; the running keys stay",
		append(attrs, slog.String("error", strings.TrimPrefix(err.Error(), "credpool: ")))...)
}

// fits checks that every per-key flag gives one value for each of n keys.
// SetKeys would refuse a count that does not fit too, but would name the
// option, not the flag the operator gave.
func (r *keyReloader) fits(n int) error {
	for _, f := range r.perKey {
		if f.values != n {
			return fmt.Errorf("%s gives %d values for %d keys in the file: the per-key flags give their values by position, "+
				"so a reload must keep the count of keys; to change it, restart the proxy with %s for the new keys", f.name, f.values, n, f.name)
		}
	}
	return nil
}

// keysSum is the fingerprint of a list of keys, in order: the reloader keeps
// it rather than the keys, to tell whether a read changed anything.
func keysSum(keys []string) [32]byte {
	return sha256.Sum256([]byte(strings.Join(keys, "\n")))
}
