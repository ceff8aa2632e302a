// bodytimer_test.go tests that clients cannot hold the proxy's connections:
// a refused request is answered at once, without its body, on a connection
// then closed; an upload that stalls or trickles is cut, an honest one is
// not; and a long stream is never cut.

package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credpool/credpool/cmd/credpool/internal/fakeapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawRequest sends the head of a POST to p over a connection of its own,
// with extra headers (a Host among them, else p's address), the framing
// header, and the first bytes of the body, and returns the connection,
// which fails every read and write after 5s.
func rawRequest(t *testing.T, p *testProxy, extra, framing, start string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", p.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	if !strings.Contains(extra, "Host:") {
		extra += "Host: " + p.Listener.Addr().String() + "\r\n"
	}
	_, err = fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\n%s%s\r\n%s", extra, framing, start)
	require.NoError(t, err)
	return conn
}

func TestRefusedBeforeTheBody(t *testing.T) {
	up := fakeapi.NewUpstream(t)
	withToken := newTestProxy(t, up, []string{goodKey}, testToken)
	open := newTestProxy(t, up, []string{goodKey}, "")
	framings := map[string][2]string{
		"content-length": {"Content-Length: 100000\r\n", "0123456789"},
		"chunked":        {"Transfer-Encoding: chunked\r\n", "a\r\n0123456789\r\n"},
	}
	cases := []struct {
		name  string
		p     *testProxy
		extra string
		want  int
	}{
		{"no token", withToken, "", http.StatusUnauthorized},
		{"wrong token", withToken, "Authorization: Bearer wrong-token-0123456789abcdef\r\n", http.StatusUnauthorized},
		{"cross-site", open, "Origin: https://evil.example\r\n", http.StatusForbidden},
		{"rebound Host", open, "Host: rebound.evil.example\r\n", http.StatusMisdirectedRequest},
	}
	for _, c := range cases {
		for framingName, framing := range framings {
			t.Run(c.name+", "+framingName, func(t *testing.T) {
				conn := rawRequest(t, c.p, c.extra, framing[0], framing[1])
				br := bufio.NewReader(conn)
				resp, err := http.ReadResponse(br, nil)
				require.NoError(t, err, "the answer comes while the body is still being sent")
				_, err = io.Copy(io.Discard, resp.Body)
				require.NoError(t, err)
				assert.Equal(t, c.want, resp.StatusCode)
				assert.True(t, resp.Close, "Connection: close")
				_, err = br.ReadByte()
				assert.ErrorIs(t, err, io.EOF, "the proxy closes the connection instead of reading the rest")
			})
		}
	}
	assert.Empty(t, up.Requests())
}

// fastTiming cuts a body after 300ms without a byte, or when it has not
// averaged 1 KiB/s once 300ms have passed.
var fastTiming = bodyTiming{idle: 300 * time.Millisecond, grace: 300 * time.Millisecond, minRate: 1 << 10}

func TestSlowUploadsAreCut(t *testing.T) {
	cases := []struct {
		name  string
		every time.Duration // a piece of the body this often
		piece int
		count int // pieces; 0 sends none after the first bytes
		want  int
	}{
		{"stalls", 0, 0, 0, http.StatusRequestTimeout},
		{"trickles a byte at a time", 50 * time.Millisecond, 1, 1000, http.StatusRequestTimeout},
		{"honest, and longer than the timeouts", 20 * time.Millisecond, 16 << 10, 50, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := fakeapi.NewUpstream(t)
			p := startTestProxy(t, up, []string{goodKey}, "", func(cfg *Config) { cfg.body = fastTiming })
			size := 10 + c.piece*c.count
			if c.count == 0 {
				size = 100000
			}
			conn := rawRequest(t, p, "", fmt.Sprintf("Content-Length: %d\r\n", size), "0123456789")
			done := make(chan struct{})
			defer close(done)
			go sendPaced(conn, c.every, c.piece, c.count, done)

			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err, "the proxy answers within the timeouts")
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, c.want, resp.StatusCode, "%s", body)
			if c.want == http.StatusRequestTimeout {
				assert.True(t, resp.Close, "Connection: close")
				assert.Contains(t, string(body), "request_timeout")
				return
			}
			require.Len(t, up.Requests(), 1)
			assert.EqualValues(t, size, up.Requests()[0].Length, "the whole body went upstream")
		})
	}
}

// sendPaced writes count pieces of piece bytes to conn, one every every,
// until done is closed or a write fails.
func sendPaced(conn net.Conn, every time.Duration, piece, count int, done <-chan struct{}) {
	if count == 0 {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	data := []byte(strings.Repeat("z", piece))
	for range count {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		if _, err := conn.Write(data); err != nil {
			return
		}
	}
}

// TestLongStreamsAreNotCut streams an answer for several times the body
// timeouts, to a request with a body and to one without: no deadline cuts
// it, and every event arrives.
func TestLongStreamsAreNotCut(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			up := fakeapi.NewUpstream(t)
			p := startTestProxy(t, up, []string{goodKey}, "", func(cfg *Config) { cfg.body = fastTiming })
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader(`{"stream":true}`)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, method, p.URL+"/v1/stream", body)
			require.NoError(t, err)
			resp, err := p.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			br := bufio.NewReader(resp.Body)
			first, err := br.ReadString('\n')
			require.NoError(t, err)
			assert.Equal(t, "data: {\"n\":1}\n", first)

			// The stream outlives every body deadline there could be.
			<-time.After(3 * (fastTiming.idle + fastTiming.grace))
			up.Release()
			rest, err := io.ReadAll(br)
			require.NoError(t, err, "the stream was cut")
			assert.Equal(t, "\ndata: {\"n\":2}\n\ndata: {\"n\":3}\n\ndata: [DONE]\n\n", string(rest))
		})
	}
}

func TestBodyDeadline(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	timing := bodyTiming{idle: 30 * time.Second, grace: 10 * time.Second, minRate: 1 << 10}
	cases := []struct {
		name string
		now  time.Duration // since the start
		read int64
		want time.Duration // since the start
	}{
		{"at the start: the grace", 0, 0, 10 * time.Second},
		{"a stall after a fast start: idle", 0, 1 << 30, 30 * time.Second},
		{"a trickle: the rate", 20 * time.Second, 5 << 10, 15 * time.Second},
		{"keeping up: idle from now", 100 * time.Second, 200 << 10, 130 * time.Second},
		{"a fraction of a second's bytes counts as none", 0, 1000, 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := &timedBody{timing: timing, start: start, read: c.read}
			assert.Equal(t, start.Add(c.want), b.deadline(start.Add(c.now)))
		})
	}
	assert.Equal(t, defaultBodyTiming, bodyTiming{}.orDefault())
	assert.Equal(t, timing, timing.orDefault())
}
