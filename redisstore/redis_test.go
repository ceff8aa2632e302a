package redisstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the outage tests make many on purpose.
	redis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m,
		// go-redis v9.18: a Sentinel client's dial still in flight when
		// the client is closed asks for the master's address, finds no
		// sentinel (Close just dropped it), connects a new one and
		// subscribes to its switch-master events, after Close, with no
		// one left to close them (sentinelFailover.MasterAddr). Those are
		// the only goroutines of PubSub.Channel here: the store receives
		// with ReceiveTimeout and starts none of them.
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9.(*sentinelFailover).listen"),
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9.(*channel).initHealthCheck.func1"),
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9.(*channel).initMsgChan.func1"))
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// redisBinary returns the path of redis-server. Without it the test is
// skipped, unless CI is "true", where a missing server is a failure: CI
// must not pass by skipping every Redis test.
func redisBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found (CI=true, so this fails rather than skips): %v", err)
		}
		t.Skipf("redis-server not found, skipping: install it (apt-get install redis-server) to run the Redis tests: %v", err)
	}
	return bin
}

// redisServer is a redis-server process of the test's own, on a free
// loopback port. It is killed when the test ends.
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	argv func(port int) []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	out  *lockedBuffer
}

// startRedis starts a redis-server without persistence, with extra
// arguments appended to the defaults.
func startRedis(t *testing.T, extra ...string) *redisServer {
	t.Helper()
	dir := t.TempDir()
	return startServer(t, func(port int) []string {
		return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir}, extra...)
	})
}

// startServer starts redis-server with the arguments argv gives for a free
// port, trying other ports if that one was taken meanwhile.
func startServer(t *testing.T, argv func(port int) []string) *redisServer {
	t.Helper()
	bin := redisBinary(t)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s := &redisServer{t: t, bin: bin, port: freePort(t), argv: argv}
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.kill)
			return s
		}
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start runs the server on its port and waits until it answers PING.
func (s *redisServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, s.argv(s.port)...)
	out := new(lockedBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done, s.out = cmd, done, out
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redis-server exited at start: %s", out.String())
		default:
		}
		if ping(s.addr()) == nil {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("redis-server did not answer in time: %s", out.String())
}

// kill ends the server at once, as a crash would: SIGKILL, no shutdown.
func (s *redisServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// restart starts the server again on the same port.
func (s *redisServer) restart() {
	s.t.Helper()
	var err error
	for attempt := 0; attempt < 50; attempt++ { // the port may linger a moment
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("restarting redis-server on %d: %v", s.port, err)
}

// ping sends PING over a raw connection: no client, no goroutines.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING: %q", line) // e.g. -LOADING
	}
	return nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newClient returns a client of addr, closed when the test ends (after the
// Transports using it, which are registered later and so closed first).
func newClient(t *testing.T, addr string, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: addr}
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newTransport builds a Transport on store, closed when the test ends.
func newTransport(t *testing.T, store credpool.Store, keys []string, opts ...credpool.Option) *credpool.Transport {
	t.Helper()
	tr, err := credpool.New(keys, append([]credpool.Option{credpool.WithStore(store)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = tr.Close()
		tr.CloseIdleConnections()
	})
	return tr
}

// testKeys returns n distinct, valid API keys.
func testKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("sk-test-%026d", i)
	}
	return keys
}

const bodyRevoked = `{"error":{"message":"Your authentication token has been revoked.","code":"token_revoked"}}`

// provider is a fake API. It answers 401 with a revocation to a key that
// revoked says is revoked for the request's path, and 200 otherwise.
type provider struct {
	*httptest.Server
	mu      sync.Mutex
	revoked map[string]bool // by path + " " + key; path "" for every path
	seen    map[string]int  // requests by key
}

func newProvider(t *testing.T) *provider {
	t.Helper()
	p := &provider{revoked: map[string]bool{}, seen: map[string]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		p.mu.Lock()
		p.seen[key]++
		revoked := p.revoked[" "+key] || p.revoked[r.URL.Path+" "+key]
		p.mu.Unlock()
		if revoked {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, bodyRevoked)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(p.Close)
	return p
}

// revoke revokes key for requests to path, or to every path if path is "".
func (p *provider) revoke(path, key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked[path+" "+key] = true
}

func (p *provider) count(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[key]
}

// get sends a GET through tr and returns the status.
func get(t *testing.T, tr http.RoundTripper, url string) int {
	t.Helper()
	status, err := tryGet(tr, url)
	require.NoError(t, err)
	return status
}

func tryGet(tr http.RoundTripper, url string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// stored reads the record of fingerprint fp straight from Redis.
func stored(t *testing.T, c redis.UniversalClient, ns, fp string) (credpool.Record, bool) {
	t.Helper()
	v, err := c.Get(context.Background(), "{"+ns+"}:key:"+fp).Result()
	if errors.Is(err, redis.Nil) {
		return credpool.Record{}, false
	}
	require.NoError(t, err)
	r, err := decode(v)
	require.NoError(t, err)
	return r, true
}

// partitioner is a dialer that can cut a client off from Redis, as a
// network partition would: it closes the client's connections and refuses
// new ones until healed.
type partitioner struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

var errPartitioned = errors.New("test: partitioned from Redis")

func (p *partitioner) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return nil, errPartitioned
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		p.conns = append(p.conns, c)
	}
	return c, err
}

func (p *partitioner) partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *partitioner) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// percentile returns the p-th percentile (0 < p ≤ 1) of sorted durations,
// by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(float64(len(sorted)) * p))
	return sorted[max(0, min(rank, len(sorted))-1)]
}

// writeFile writes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// proxy forwards TCP connections to a target, and can freeze: hold every
// byte, with the connections open, as a dead link or a lost NAT entry does.
type proxy struct {
	l      net.Listener
	target string
	closed chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	frozen chan struct{} // non-nil while frozen; closed when thawed
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{l: l, target: target, closed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, down, up)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(up, down)
		go p.pump(down, up)
	}
}

func (p *proxy) pump(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			frozen := p.frozen
			p.mu.Unlock()
			if frozen != nil {
				select {
				case <-frozen:
				case <-p.closed:
					return
				}
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen == nil {
		p.frozen = make(chan struct{})
	}
}

func (p *proxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen != nil {
		close(p.frozen)
		p.frozen = nil
	}
}

func (p *proxy) close() {
	p.l.Close()
	close(p.closed)
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// commandLog is a go-redis hook that records the commands a client sends
// and counts its round trips: each command, pipeline and dial is one.
type commandLog struct {
	mu    sync.Mutex
	cmds  [][]string // each command's name and arguments
	trips int
	dials int
}

// logCommands hooks a new commandLog into c.
func logCommands(c redis.UniversalClient) *commandLog {
	l := &commandLog{}
	c.AddHook(l)
	return l
}

func (l *commandLog) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		l.mu.Lock()
		l.dials++
		l.mu.Unlock()
		return next(ctx, network, addr)
	}
}

func (l *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.record(cmd)
		return next(ctx, cmd)
	}
}

func (l *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		l.record(cmds...)
		return next(ctx, cmds)
	}
}

func (l *commandLog) record(cmds ...redis.Cmder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trips++
	for _, cmd := range cmds {
		var args []string
		for _, a := range cmd.Args() {
			args = append(args, fmt.Sprint(a))
		}
		args[0] = strings.ToLower(args[0])
		l.cmds = append(l.cmds, args)
	}
}

func (l *commandLog) commands() [][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]string(nil), l.cmds...)
}

// roundTrips returns the round trips logged: commands and pipelines, and
// dials apart.
func (l *commandLog) roundTrips() (trips, dials int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.trips, l.dials
}

func (l *commandLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds, l.trips, l.dials = nil, 0, 0
}
