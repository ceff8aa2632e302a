// Command demo shows credpool keeping a pool of API keys healthy under load,
// with no network and no real keys.
//
// It starts a simulated OpenAI-style provider on loopback (POST
// /v1/chat/completions, "Authorization: Bearer <key>") that knows five
// made-up keys:
//
//   - one revoked: 401 invalid_api_key;
//   - one out of quota: 429 insufficient_quota;
//   - one rate-limited: 429 rate_limit_exceeded with Retry-After: 1 on every
//     4th request it gets;
//   - two healthy ones, which answer in a few milliseconds and, on every 40th
//     answer, say 503 "The server is overloaded".
//
// It then sends a few hundred concurrent chat completions through an
// http.Client whose Transport is a credpool.Transport over those five keys,
// and shows that:
//
//   - every request succeeds: the revoked key dies on its first 401 and
//     leaves rotation for good, the quota and rate-limited keys cool, and
//     overloaded answers are retried on another key after a short backoff;
//   - each key state change is reported as it happens, by redacted label;
//   - Transport.Status gives a per-key table of states and counters;
//   - the provider itself saw no request with the dead key after it was
//     killed.
//
// No key is ever printed, only labels such as "sk-…REVK".
//
// Usage:
//
//	go run ./examples/demo [-n requests] [-c concurrency]
//
// It exits 1 if any request ended in an error or a non-200 response, or if
// the revoked key did not die and stay dead; 2 if the flags are wrong.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/credpool/credpool"
)

// keyKind is how the simulated provider treats a key.
type keyKind int

const (
	revoked     keyKind = iota // 401 invalid_api_key, always
	noQuota                    // 429 insufficient_quota, always
	rateLimited                // 429 rate_limit_exceeded on every 4th request
	healthy                    // 200, now and then 503
)

// demoKey is a made-up key and how the provider treats it. The keys are
// obviously fake; their labels come out as "sk-…" and the last four
// characters, which say which key is which.
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

// The provider's error bodies, in OpenAI's wire format.
const (
	revokedBody     = `{"error":{"message":"Incorrect API key provided: sk-dem***. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`
	noQuotaBody     = `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`
	rateLimitBody   = `{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-demo on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	overloadedBody  = `{"error":{"message":"The server is overloaded","type":"server_error"}}`
	badRequestBody  = `{"error":{"message":"'messages' is a required property","type":"invalid_request_error","param":"messages","code":null}}`
	completionBody  = `{"id":"chatcmpl-demo-%d","object":"chat.completion","created":%d,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the simulated provider!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":6,"total_tokens":18}}`
	chatRequestBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to request %d"}]}`
)

func main() {
	os.Exit(run())
}

// run is the whole demo; it returns the exit status.
func run() int {
	n := flag.Int("n", 300, "number of requests to send")
	c := flag.Int("c", 16, "number of requests in flight at once")
	flag.Parse()
	if *n < 1 || *c < 1 {
		fmt.Fprintln(os.Stderr, "demo: -n and -c must be at least 1")
		return 2
	}

	prov := newProvider(demoKeys)
	srv := httptest.NewServer(prov.handler())
	defer srv.Close()

	con := newConsole()
	watch := &deathWatch{prov: prov, index: indexOf(revoked)}
	t, err := newTransport(srv.URL, *c, con, watch)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 2
	}
	defer t.CloseIdleConnections()
	client := &http.Client{Transport: t, Timeout: 5 * time.Second}

	fmt.Printf("Sending %s, %d at a time, through %s\n\n", plural(*n, "chat completion"), *c, t)
	start := time.Now()
	results := sendAll(client, srv.URL+"/v1/chat/completions", *n, *c)
	tl := collect(results, &progress{con: con, total: *n, start: start})
	elapsed := time.Since(start)

	status := t.Status()
	fmt.Println()
	printSummary(tl, *n, *c, elapsed)
	fmt.Println()
	printTable(status)
	fmt.Println()
	return verdict(tl, status, watch)
}

// newTransport builds the credpool.Transport over the demo keys: keys go only
// to the simulated provider, the backoff between transient retries is short
// so the demo is quick, every state change is printed, and the watched key's
// death is recorded.
func newTransport(serverURL string, concurrency int, con *console, watch *deathWatch) (*credpool.Transport, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.Proxy = nil // loopback only, whatever the environment says
	base.MaxIdleConnsPerHost = concurrency

	keys := make([]string, len(demoKeys))
	for i, k := range demoKeys {
		keys[i] = k.key
	}
	var t *credpool.Transport
	t, err = credpool.New(keys,
		credpool.WithBase(base),
		credpool.WithHosts(u.Host),
		credpool.WithBackoff(func() backoff.BackOff { return backoff.NewConstantBackOff(20 * time.Millisecond) }),
		credpool.WithOnStateChange(func(c credpool.StateChange) {
			con.event("state change: " + describe(c))
			if c.To == credpool.StateDead && c.Index == watch.index {
				watch.killed(c, t.Status()[c.Index].Requests)
			}
		}),
	)
	return t, err
}

// describe tells a state change in one line, by label only.
func describe(c credpool.StateChange) string {
	var why []string
	if c.Reason != "" {
		why = append(why, string(c.Reason))
	}
	if c.Status != 0 {
		why = append(why, fmt.Sprintf("HTTP %d", c.Status))
	}
	if !c.ResetAt.IsZero() {
		why = append(why, "back in "+roughly(time.Until(c.ResetAt)))
	}
	switch {
	case c.From == credpool.StateExhausted && c.To == credpool.StateOK:
		why = append(why, "cooldown over")
	case c.From == c.To:
		why = append(why, "cooldown extended")
	}
	s := fmt.Sprintf("%-9s %-9s -> %s", c.Label, c.From, c.To)
	if len(why) > 0 {
		s += " (" + strings.Join(why, ", ") + ")"
	}
	return s
}

// roughly formats a wait for people: tenths of a second, rounded up, when
// short; whole seconds otherwise.
func roughly(d time.Duration) string {
	switch {
	case d <= 0:
		return "now"
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", math.Ceil(d.Seconds()*10)/10)
	}
	return d.Truncate(time.Second).String()
}

// ---- The simulated provider ----

// provider is an in-process stand-in for an OpenAI-compatible API. It counts
// the requests it sees per key, so the demo can prove a dead key never
// returns.
type provider struct {
	index   map[string]int // key -> position in keys
	kinds   []keyKind
	answers atomic.Int64 // successful answers, for the occasional 503

	mu   sync.Mutex
	seen []int // requests per key
}

func newProvider(keys []demoKey) *provider {
	p := &provider{index: make(map[string]int, len(keys)), seen: make([]int, len(keys))}
	for i, k := range keys {
		p.index[k.key] = i
		p.kinds = append(p.kinds, k.kind)
	}
	return p
}

func (p *provider) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", p.chatCompletions)
	return mux
}

// chatCompletions authenticates the key, checks the request body (which also
// proves that a replayed request arrives whole), and answers as the key's
// kind says.
func (p *provider) chatCompletions(w http.ResponseWriter, r *http.Request) {
	key, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	i, known := p.index[key]
	if !bearer || !known { // OpenAI answers an unknown key as it does a revoked one
		writeJSON(w, http.StatusUnauthorized, revokedBody)
		return
	}
	nth := p.count(i)
	if !validChat(r.Body) {
		writeJSON(w, http.StatusBadRequest, badRequestBody)
		return
	}
	switch p.kinds[i] {
	case revoked:
		writeJSON(w, http.StatusUnauthorized, revokedBody)
	case noQuota:
		writeJSON(w, http.StatusTooManyRequests, noQuotaBody)
	case rateLimited:
		if nth%4 == 0 {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, rateLimitBody)
			return
		}
		p.complete(w)
	default:
		p.complete(w)
	}
}

// count records a request with key i and returns how many it has now had.
func (p *provider) count(i int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[i]++
	return p.seen[i]
}

// snapshot returns the requests seen so far, per key.
func (p *provider) snapshot() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

// complete answers a chat completion after a few milliseconds of "thinking",
// except every 40th answer, which is a 503 overload.
func (p *provider) complete(w http.ResponseWriter) {
	n := p.answers.Add(1)
	if n%40 == 0 {
		writeJSON(w, http.StatusServiceUnavailable, overloadedBody)
		return
	}
	time.Sleep(2*time.Millisecond + rand.N(8*time.Millisecond))
	writeJSON(w, http.StatusOK, fmt.Sprintf(completionBody, n, time.Now().Unix()))
}

// validChat reports whether body is a chat completion request with a model
// and at least one message.
func validChat(body io.Reader) bool {
	var req struct {
		Model    string            `json:"model"`
		Messages []json.RawMessage `json:"messages"`
	}
	return json.NewDecoder(body).Decode(&req) == nil && req.Model != "" && len(req.Messages) > 0
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// ---- Watching the revoked key die ----

// deathWatch records the moment the watched key is killed: how many attempts
// the Transport had sent with it by then, and how many requests the provider
// had seen per key. Attempts already in flight may reach the provider after
// the kill is announced; anything beyond the attempts sent before the kill
// would be a request sent with a dead key.
type deathWatch struct {
	prov  *provider
	index int // the key watched

	mu     sync.Mutex
	dead   bool
	change credpool.StateChange
	sent   uint64 // attempts sent with the key before it was killed
	atKill []int  // provider's count per key when the kill was announced
}

// killed records the watched key's death.
func (d *deathWatch) killed(c credpool.StateChange, sent uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return
	}
	d.dead, d.change, d.sent, d.atKill = true, c, sent, d.prov.snapshot()
}

// deathReport is what the provider saw of a killed key, after the fact.
type deathReport struct {
	change    credpool.StateChange
	afterKill []int // requests per key the provider saw after the kill
	inFlight  int   // of the dead key's, those sent before the kill that arrived after it
	sentAfter int   // of the dead key's, those sent after the kill: must be 0
}

// report compares the provider's final counts with the moment of the kill.
// ok is false if the watched key was not killed.
func (d *deathWatch) report() (r deathReport, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.dead {
		return r, false
	}
	final := d.prov.snapshot()
	r.change = d.change
	r.afterKill = make([]int, len(final))
	for i := range final {
		r.afterKill[i] = final[i] - d.atKill[i]
	}
	i := d.index
	r.sentAfter = max(final[i]-int(d.sent), 0)
	r.inFlight = r.afterKill[i] - r.sentAfter
	return r, true
}

// ---- Sending the load ----

// outcome is how one request ended: a status, or an error.
type outcome struct {
	status int
	err    error
}

// sendAll sends n chat completions to endpoint, c at a time, and returns a channel
// of their outcomes that is closed when all are done.
func sendAll(client *http.Client, endpoint string, n, c int) <-chan outcome {
	jobs := make(chan int)
	results := make(chan outcome, c)
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				results <- chat(client, endpoint, i)
			}
		}()
	}
	go func() {
		for i := range n {
			jobs <- i
		}
		close(jobs)
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	return results
}

// chat sends one chat completion request and reads its answer. The request
// carries no key: the Transport adds one.
func chat(client *http.Client, endpoint string, i int) outcome {
	body := fmt.Sprintf(chatRequestBody, i)
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return outcome{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return outcome{status: resp.StatusCode}
	}
	var completion struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&completion); err != nil {
		return outcome{status: resp.StatusCode, err: fmt.Errorf("reading completion: %w", err)}
	}
	if len(completion.Choices) == 0 || completion.Choices[0].Message.Content == "" {
		return outcome{status: resp.StatusCode, err: errors.New("completion has no message")}
	}
	return outcome{status: resp.StatusCode}
}

// tally counts outcomes.
type tally struct {
	done, ok int
	byStatus map[int]int    // non-200 responses handed back, by status
	errs     map[string]int // errors, by message
}

func (t *tally) add(o outcome) {
	t.done++
	switch {
	case o.err != nil:
		t.errs[o.err.Error()]++
	case o.status != http.StatusOK:
		t.byStatus[o.status]++
	default:
		t.ok++
	}
}

func (t *tally) failed() int { return t.done - t.ok }

func (t *tally) errCount() int {
	n := 0
	for _, count := range t.errs {
		n += count
	}
	return n
}

// collect tallies outcomes until the channel closes, keeping the progress
// display up to date.
func collect(results <-chan outcome, p *progress) tally {
	t := tally{byStatus: map[int]int{}, errs: map[string]int{}}
	var tick <-chan time.Time
	if p.con.tty {
		ticker := time.NewTicker(100 * time.Millisecond)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		select {
		case o, more := <-results:
			if !more {
				p.finish(t)
				return t
			}
			t.add(o)
			p.step(t)
		case <-tick:
			p.redraw(t)
		}
	}
}

// ---- Output ----

// console serializes the demo's output. On a terminal it keeps a progress
// line at the bottom of stderr, clearing it before an event line is printed
// to stdout and drawing it again after.
type console struct {
	tty bool

	mu   sync.Mutex
	line string // the progress line on the terminal, if any
}

func newConsole() *console {
	fi, err := os.Stderr.Stat()
	return &console{tty: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

// event prints one line to stdout.
func (c *console) event(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tty && c.line != "" {
		fmt.Fprint(os.Stderr, "\r\033[K")
	}
	fmt.Println(line)
	if c.tty && c.line != "" {
		fmt.Fprint(os.Stderr, c.line)
	}
}

// status shows a progress line: redrawn in place on a terminal, else printed
// as a line of its own.
func (c *console) status(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tty {
		fmt.Fprintln(os.Stderr, line)
		return
	}
	c.line = line
	fmt.Fprint(os.Stderr, "\r\033[K"+line)
}

// endStatus leaves the last progress line on the terminal and moves below it.
func (c *console) endStatus() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tty && c.line != "" {
		fmt.Fprintln(os.Stderr)
		c.line = ""
	}
}

// progress decides when to show progress: about ten times a second on a
// terminal, at every quarter of the run otherwise, so CI logs stay readable.
type progress struct {
	con     *console
	total   int
	start   time.Time
	quarter int // quarters already printed, off a terminal
}

func (p *progress) line(t tally) string {
	return fmt.Sprintf("progress: %d/%d done, %d ok, %d failed, %.2fs",
		t.done, p.total, t.ok, t.failed(), time.Since(p.start).Seconds())
}

// redraw shows the current progress on a terminal.
func (p *progress) redraw(t tally) { p.con.status(p.line(t)) }

// step is called after each outcome; off a terminal it prints a line when a
// new quarter of the requests is done.
func (p *progress) step(t tally) {
	if p.con.tty {
		return
	}
	if q := t.done * 4 / p.total; q > p.quarter {
		p.quarter = q
		p.con.status(p.line(t))
	}
}

// finish shows the final progress on a terminal and ends the line.
func (p *progress) finish(t tally) {
	if p.con.tty {
		p.redraw(t)
		p.con.endStatus()
	}
}

// printSummary prints the outcomes of the run.
func printSummary(t tally, n, c int, elapsed time.Duration) {
	fmt.Printf("Sent %s, %d at a time, in %s:\n", plural(n, "request"), c, elapsed.Round(time.Millisecond))
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(w, "  succeeded:\t%d\n", t.ok)
	if len(t.byStatus) == 0 {
		fmt.Fprintf(w, "  handed back with a non-200 status:\t0\n")
	}
	for _, status := range sortedKeys(t.byStatus) {
		fmt.Fprintf(w, "  handed back with status %d:\t%d\n", status, t.byStatus[status])
	}
	fmt.Fprintf(w, "  errors:\t%d\n", t.errCount())
	w.Flush()
	for i, msg := range sortedKeys(t.errs) {
		if i == 5 {
			fmt.Printf("    ... and %d more kinds of error\n", len(t.errs)-i)
			break
		}
		fmt.Printf("    %d x %s\n", t.errs[msg], msg)
	}
}

// printTable prints the per-key status table.
func printTable(status []credpool.KeyStatus) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "LABEL\tSTATE\tREASON\tRESET IN\tREQUESTS\tFAILURES")
	for _, s := range status {
		reason, resetIn := string(s.Reason), "-"
		if reason == "" {
			reason = "-"
		}
		if !s.ResetAt.IsZero() {
			resetIn = roughly(time.Until(s.ResetAt))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\n", s.Label, s.State, reason, resetIn, s.Requests, s.Failures)
	}
	w.Flush()
}

// verdict prints what the provider saw after the revoked key died, checks
// that it stayed dead and that every request succeeded, and returns the exit
// status.
func verdict(t tally, status []credpool.KeyStatus, watch *deathWatch) int {
	code := 0
	r, killed := watch.report()
	if killed {
		printAfterKill(r, status)
	}
	label := status[watch.index].Label
	if problem := deadKeyProblem(r, killed, t, status[watch.index]); problem != "" {
		fmt.Println("FAIL:", problem)
		code = 1
	} else {
		fmt.Printf("OK: revoked key %s is dead, no request failed because of it, and it received 0 requests after it was killed.\n", label)
	}
	if f := t.failed(); f > 0 {
		fmt.Printf("FAIL: %d of %s did not succeed (see the summary above).\n", f, plural(t.done, "request"))
		code = 1
	}
	return code
}

// deadKeyProblem returns what is wrong with the revoked key's fate, or "" if
// it died, stayed dead, got no request after its death and failed no request.
func deadKeyProblem(r deathReport, killed bool, t tally, key credpool.KeyStatus) string {
	switch {
	case !killed:
		return fmt.Sprintf("revoked key %s was never killed", key.Label)
	case key.State != credpool.StateDead:
		return fmt.Sprintf("revoked key %s is %s, not dead", key.Label, key.State)
	case t.byStatus[http.StatusUnauthorized] > 0:
		return fmt.Sprintf("%s ended with a 401, which only the revoked key gets", plural(t.byStatus[http.StatusUnauthorized], "request"))
	case r.sentAfter > 0:
		return fmt.Sprintf("revoked key %s received %s after it was killed", key.Label, plural(r.sentAfter, "request"))
	}
	return ""
}

// printAfterKill prints how many requests the provider saw per key after the
// revoked key was killed.
func printAfterKill(r deathReport, status []credpool.KeyStatus) {
	parts := make([]string, len(status))
	for i, s := range status {
		parts[i] = fmt.Sprintf("%s %d", s.Label, r.afterKill[i])
	}
	fmt.Printf("Requests the provider saw after %s was killed: %s\n", r.change.Label, strings.Join(parts, ", "))
	if r.inFlight > 0 {
		fmt.Printf("(%s with %s had been sent before it was killed but reached the provider just after; %d after it.)\n",
			plural(r.inFlight, "request"), r.change.Label, r.sentAfter)
	}
}

// indexOf returns the position of the first demo key of kind k.
func indexOf(k keyKind) int {
	return slices.IndexFunc(demoKeys, func(d demoKey) bool { return d.kind == k })
}

// sortedKeys returns m's keys in order.
func sortedKeys[K int | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// plural counts things in English: "1 request", "300 requests".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
