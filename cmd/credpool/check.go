// check.go is the check command: one cheap GET per key, each key alone in a
// Transport of its own with no retries, and a table of which keys are ok,
// exhausted or dead.

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/cmd/credpool/internal/human"
	"github.com/credpool/credpool/cmd/credpool/internal/proxy"
)

// checkOptions are the check command's flags.
type checkOptions struct {
	preset, baseURL, path string
	keys                  keySource
	timeout               time.Duration
	parallel              int
}

// checkFlags returns the check command's FlagSet and the options it fills.
func checkFlags() (*flag.FlagSet, *checkOptions) {
	o := new(checkOptions)
	fs := newFlagSet("check", "--base-url URL [flags]", `Send one cheap GET (by default a list of models) with each key alone, with no
retry, and print which keys are ok (answered with a success), exhausted
(rate-limited or out of credit: cooling until RESET IN) or dead (revoked or
invalid).

The exit status is 0 when every key is ok, 1 otherwise.
`)
	fs.StringVar(&o.preset, "preset", "", "the provider `name`, for its auth header: "+presetNames()+" (default: Authorization: Bearer)")
	fs.StringVar(&o.baseURL, "upstream", "", "the API's base `URL`, as the provider documents it, e.g. https://api.openai.com/v1 (required)")
	fs.StringVar(&o.baseURL, "base-url", "", "the same as --upstream")
	fs.StringVar(&o.path, "path", "", "the `path` to GET (default: the preset's list of models, else /v1/models)")
	o.keys.register(fs)
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "the longest a key's request may take")
	fs.IntVar(&o.parallel, "parallel", 4, "how many keys to check at once")
	return fs, o
}

// checkResult is how one key fared.
type checkResult struct {
	label   string
	status  int            // the response's status; 0 when there was none
	state   credpool.State // dead for a key the provider rejected as revoked or invalid
	reason  credpool.Reason
	resetAt time.Time
	suspect bool // the outage guard thought the rejection a misconfiguration
	err     error
}

func (r checkResult) ok() bool {
	return r.err == nil && r.status >= 200 && r.status < 300 && r.state == credpool.StateOK
}

// runCheck is the check command.
func runCheck(ctx context.Context, out output, args []string) error {
	fs, o := checkFlags()
	if err := parse(fs, args); err != nil {
		return err
	}
	target, p, opts, err := o.config()
	if err != nil {
		return err
	}
	keys, err := o.keys.load(fs)
	if err != nil {
		return err
	}
	if _, err := credpool.New(keys); err != nil { // names a bad key by its index in the list
		return err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	results := make([]checkResult, len(keys))
	sem := make(chan struct{}, o.parallel)
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = checkKey(ctx, key, target, p.header, opts, base, o.timeout)
		}()
	}
	wg.Wait()
	if printCheck(out.stdout, results) {
		return nil
	}
	return exitStatus(exitFail)
}

// config checks the flags and returns the URL to GET, the preset and its
// options.
func (o *checkOptions) config() (*url.URL, preset, []credpool.Option, error) {
	p, opts, err := lookupPreset(o.preset)
	if err != nil {
		return nil, p, nil, err
	}
	if o.baseURL == "" {
		return nil, p, nil, usagef("--upstream is required, e.g. --upstream https://api.openai.com/v1")
	}
	upstream, err := parseUpstream(o.baseURL)
	if err != nil {
		return nil, p, nil, err
	}
	if o.timeout <= 0 || o.parallel < 1 {
		return nil, p, nil, usagef("--timeout must be positive and --parallel at least 1")
	}
	path := o.path
	if path == "" {
		path = p.checkPath
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	base := proxy.UpstreamFor(upstream, path) // https://api.openai.com/v1 and /v1/models: once
	target, err := url.Parse(strings.TrimRight(base.String(), "/") + path)
	if err != nil {
		return nil, p, nil, usagef("--path %q does not make a URL", o.path)
	}
	return target, p, opts, nil
}

// checkKey sends one GET with key alone: no retry, no wait for a cooldown.
func checkKey(ctx context.Context, key string, target *url.URL, header http.Header,
	opts []credpool.Option, base http.RoundTripper, timeout time.Duration) checkResult {
	var r checkResult
	opts = append(append([]credpool.Option(nil), opts...),
		credpool.WithBase(base), credpool.WithHosts(target.Host),
		credpool.WithMaxRetries(0), credpool.WithMaxWait(0),
		credpool.WithOnStateChange(func(c credpool.StateChange) { r.suspect = r.suspect || c.Suspect != "" }))
	t, err := credpool.New([]string{key}, opts...)
	if err != nil {
		return checkResult{label: "?", err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return checkResult{label: t.Keys()[0].Label, err: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := t.RoundTrip(req)
	if err == nil {
		r.status = resp.StatusCode
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}
	s := t.Keys()[0]
	r.label, r.state, r.reason, r.resetAt, r.err = s.Label, s.State, s.Reason, s.ResetAt, err
	if r.suspect {
		// Alone in its pool, a revoked key is only cooled by the outage
		// guard, which holds back the kill of a pool's last key; the
		// provider's verdict is that it is dead.
		r.state, r.reason, r.resetAt = credpool.StateDead, credpool.ReasonAuthPermanent, time.Time{}
	}
	return r
}

// printCheck prints the table and a summary, and reports whether every key
// is ok.
func printCheck(w io.Writer, results []checkResult) bool {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LABEL\tSTATUS\tSTATE\tREASON\tRESET IN")
	var ok, exhausted, dead, disabled, suspects int
	for _, r := range results {
		status := "error"
		if r.err == nil {
			status = strconv.Itoa(r.status)
		}
		reason, resetIn := human.Cells(r.reason, r.resetAt)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.label, status, r.state, reason, resetIn)
		switch {
		case r.ok():
			ok++
		case r.state == credpool.StateDead:
			dead++
		case r.state == credpool.StateExhausted:
			exhausted++
		case r.state == credpool.StateDisabled:
			disabled++
		}
		if r.suspect {
			suspects++
		}
	}
	tw.Flush()
	// A key alone in a Transport of its own is never disabled, since only an
	// operator disables keys; should one be, it counts as disabled, not as
	// failed otherwise, and the count is shown only then, as NoKeysError's.
	fmt.Fprintf(w, "\n%d of %s ok, %d exhausted, %d dead, ", ok, human.Plural(len(results), "key"), exhausted, dead)
	if disabled > 0 {
		fmt.Fprintf(w, "%d disabled, ", disabled)
	}
	fmt.Fprintf(w, "%d failed otherwise.\n", len(results)-ok-exhausted-dead-disabled)
	for _, r := range results {
		switch {
		case r.err != nil && !errors.Is(r.err, credpool.ErrNoKeys):
			fmt.Fprintf(w, "%s: %v\n", r.label, r.err)
		case r.err == nil && r.state == credpool.StateOK && !r.ok():
			fmt.Fprintf(w, "%s: HTTP %d is not a success: check --upstream and --path\n", r.label, r.status)
		}
	}
	if dead == len(results) && suspects > 0 {
		fmt.Fprintln(w, "Every key was rejected: if they are not all revoked, check --upstream and --preset (the auth header).")
	}
	return ok == len(results)
}
