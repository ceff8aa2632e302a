package credpool

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowProvider is a provider in memory, and a base that holds each request
// to /slow until release is closed.
func slowProvider(release <-chan struct{}) (*provider, http.RoundTripper) {
	p := newMemProvider(nil)
	return p, roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/slow" {
			<-release
		}
		return p.RoundTrip(r)
	})
}

// A stream holds its key's place in flight until its body is closed: the
// requests sent meanwhile go to the key with room, through real HTTP.
func TestStreamHoldsItsPlace(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+"\n\n")
		w.(http.Flusher).Flush()
		if r.URL.Path == "/stream" {
			<-r.Context().Done() // streams until the client hangs up
		}
	}))
	defer api.Close()
	tr := newTransport(t, []string{keyA, keyB}, WithStrategy(FillFirst), WithKeyLimits(KeyLimit{InFlight: 1}))

	stream, err := tr.RoundTrip(httptestRequest(t, api.URL+"/stream"))
	require.NoError(t, err)
	line := make([]byte, 6+len(keyA))
	_, err = io.ReadFull(stream.Body, line)
	require.NoError(t, err)
	assert.Equal(t, "data: "+keyA, string(line), "the stream is on A")

	for range 3 {
		_, body := get(t, tr, api.URL)
		assert.Equal(t, "data: "+keyB+"\n\n", body, "A is full while its stream is open")
	}
	stream.Body.Close()
	_, body := get(t, tr, api.URL)
	assert.Equal(t, "data: "+keyA+"\n\n", body, "closing the stream gives A's place back")
	assert.Zero(t, tr.pool().limits[0].inFlight.Load()+tr.pool().limits[1].inFlight.Load(), "every place is back")
}

// With every key full, a request waits for room, within WithMaxWait, and is
// served as soon as a place is released.
func TestFullPoolWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p, base := slowProvider(release)
		tr := newTransport(t, []string{keyA, keyB}, WithBase(base), WithKeyLimits(KeyLimit{InFlight: 1}), WithMaxWait(time.Minute))
		for range 2 {
			go get(t, tr, "http://provider.test/slow")
		}
		synctest.Wait()
		start := time.Now()
		done := make(chan int)
		go func() {
			status, _ := get(t, tr, p.URL)
			done <- status
		}()
		synctest.Wait()
		assert.Len(t, p.keys(), 0, "the third request waits: both keys are full")
		time.Sleep(10 * time.Second)
		close(release)
		assert.Equal(t, 200, <-done)
		assert.Equal(t, 10*time.Second, time.Since(start), "served when a place was released, not before")
		assert.Equal(t, uint64(1), tr.Stats().Waits)
	})
}

func TestFullPoolFailsAfterMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := newMemProvider(nil)
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			<-release
			return p.RoundTrip(r)
		})
		tr := newTransport(t, []string{keyA}, WithBase(base), WithKeyLimits(KeyLimit{InFlight: 1}), WithMaxWait(5*time.Second))
		go get(t, tr, p.URL)
		synctest.Wait()
		start := time.Now()
		_, err := send(t, tr, context.Background(), p.URL)
		var noKeys *NoKeysError
		require.ErrorAs(t, err, &noKeys)
		assert.Equal(t, 1, noKeys.AtLimit)
		assert.Contains(t, err.Error(), "(1 ok, 0 exhausted, 0 dead; 1 at their limit)")
		assert.Equal(t, 5*time.Second, time.Since(start), "it waited WithMaxWait for room")
		close(release)
	})
}

// PerMinute spreads requests: with a budget of 60 a minute per key, the
// third request in the same instant waits the second it takes a key to
// earn one.
func TestPerMinuteSpreadsRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newMemProvider(nil)
		tr := newTransport(t, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst),
			WithKeyLimits(KeyLimit{PerMinute: 60}))
		start := time.Now()
		for range 4 {
			status, _ := get(t, tr, p.URL)
			require.Equal(t, 200, status)
		}
		assert.Equal(t, []string{keyA, keyB, keyA, keyB}, p.keys())
		assert.Equal(t, time.Second, time.Since(start), "two waits of a second would be 2 s: the keys refill together")
	})
}

// A pinned request waits for its own key's room; it is never moved.
func TestPinnedRequestWaitsForItsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newMemProvider(nil)
		tr := newTransport(t, []string{keyA, keyB}, WithBase(p), WithKeyLimits(KeyLimit{PerMinute: 6}))
		onA := Pin(context.Background(), tr.Keys()[0].Label)
		start := time.Now()
		for range 2 {
			resp, err := send(t, tr, onA, p.URL)
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
		}
		assert.Equal(t, []string{keyA, keyA}, p.keys())
		assert.Equal(t, 10*time.Second, time.Since(start), "a token every 10 s")
	})
}

// A full lower tier spills to the next, as a dead one does.
func TestFullTierOverflows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p, base := slowProvider(release)
		for _, s := range []Strategy{RoundRobin, FillFirst, Random, LeastUsed} {
			tr := newTransport(t, []string{keyA, keyB}, WithBase(base), WithStrategy(s), WithTiers(0, 1),
				WithKeyLimits(KeyLimit{InFlight: 1}, KeyLimit{}))
			go get(t, tr, "http://provider.test/slow")
			synctest.Wait()
			get(t, tr, p.URL)
		}
		close(release)
		synctest.Wait()
		assert.Equal(t, []string{keyB, keyB, keyB, keyB, keyA, keyA, keyA, keyA}, p.keys(),
			"the paid tier serves while the free one is full (the slow requests on A arrive last)")
	})
}

// An error response gives its place back at once: only a success holds it,
// until the caller closes it.
func TestErrorResponsesReleaseAtOnce(t *testing.T) {
	p := newProvider(t, func(key string, _ int) reply {
		if key == keyA {
			return reply{status: 429, header: map[string]string{"Retry-After": "60"}, body: bodyRateLimit}
		}
		return reply{status: 503, body: "busy"}
	})
	tr := newTransport(t, []string{keyA, keyB}, WithKeyLimits(KeyLimit{InFlight: 1}), WithMaxWait(0))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 503, status)
	for i, l := range tr.pool().limits {
		assert.Zero(t, l.inFlight.Load(), "key %d", i)
	}
}

// The body of a 101 Switching Protocols stays writable, as a reverse proxy
// needs it, while it holds its place.
func TestHeldBodyKeepsWriter(t *testing.T) {
	tr := newTransport(t, []string{keyA}, WithKeyLimits(KeyLimit{InFlight: 1}))
	conn := &rwc{}
	resp := &http.Response{StatusCode: http.StatusSwitchingProtocols, Body: conn}
	p := tr.pool()
	require.True(t, p.limits[0].admit(time.Time{}))
	p.hold(resp, 0)
	w, ok := resp.Body.(io.ReadWriteCloser)
	require.True(t, ok, "still an io.ReadWriteCloser")
	_, err := w.Write([]byte("ping"))
	require.NoError(t, err)
	assert.Equal(t, "ping", conn.written.String())
	assert.Equal(t, int32(1), p.limits[0].inFlight.Load())
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "a second Close releases nothing more")
	assert.Zero(t, p.limits[0].inFlight.Load())
}

type rwc struct {
	strings.Reader
	written strings.Builder
}

func (c *rwc) Write(p []byte) (int, error) { return c.written.Write(p) }
func (c *rwc) Close() error                { return nil }

func TestKeyLimitsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits []KeyLimit
		want   string
	}{
		{name: "negative cap", limits: []KeyLimit{{InFlight: -1}}, want: "limit 0 is not"},
		{name: "huge cap", limits: []KeyLimit{{InFlight: math.MaxInt32 + 1}}, want: "limit 0 is not"},
		{name: "NaN rate", limits: []KeyLimit{{}, {PerMinute: math.NaN()}}, want: "limit 1 is not"},
		{name: "infinite rate", limits: []KeyLimit{{PerMinute: math.Inf(1)}}, want: "limit 0 is not"},
		{name: "neither one nor one per key", limits: []KeyLimit{{}, {}, {}}, want: "WithKeyLimits: 3 values for 2 keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New([]string{keyA, keyB}, WithKeyLimits(tc.limits...))
			require.ErrorIs(t, err, ErrInvalidOption)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	tr, err := New([]string{keyA, keyB}, WithKeyLimits(KeyLimit{InFlight: 2, PerMinute: 500}))
	require.NoError(t, err, "one limit for every key")
	require.NoError(t, tr.SetKeys([]string{keyA, keyB, keyC}), "and still one for every key")
	require.NoError(t, tr.SetKeys([]string{keyA}, WithKeyLimits()), "none removes them")
	assert.Nil(t, tr.pool().limits)
}

// A key that stays across SetKeys keeps its places in flight: a stream open
// on it still counts, and its close frees the key in the new generation.
func TestPlacesInFlightSurviveSetKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newMemProvider(nil)
		tr := newTransport(t, []string{keyA, keyB}, WithBase(p), WithStrategy(FillFirst),
			WithKeyLimits(KeyLimit{InFlight: 1}), WithMaxWait(time.Minute))
		held, err := tr.RoundTrip(httptestRequest(t, p.URL))
		require.NoError(t, err)
		require.NoError(t, tr.SetKeys([]string{keyC, keyA}, WithTiers(1, 0)))
		get(t, tr, p.URL)
		assert.Equal(t, []string{keyA, keyC}, p.keys(), "A is still full in the new generation")

		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := send(t, tr, Session(context.Background(), "conversation"), p.URL)
			if assert.NoError(t, err) {
				assert.Equal(t, 200, resp.StatusCode)
			}
		}()
		synctest.Wait()
		time.Sleep(time.Second)
		held.Body.Close()
		<-done
		assert.Equal(t, keyA, p.keys()[2], "the session waited for its key, which the close freed")
	})
}

// BenchmarkKeyLimits is the success path with per-key limits against the
// same pool without them, and the base alone: what WithKeyLimits costs a
// request (a locked choice, a place taken and given back, a rate's token,
// and the body that holds the place).
func BenchmarkKeyLimits(b *testing.B) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	rows := []struct {
		name string
		opts []Option
	}{
		{name: "none"},
		{name: "in_flight", opts: []Option{WithKeyLimits(KeyLimit{InFlight: 64})}},
		{name: "in_flight_and_rate", opts: []Option{WithKeyLimits(KeyLimit{InFlight: 64, PerMinute: 1e12})}},
	}
	b.Run("bare", func(b *testing.B) { runSuccess(b, base) })
	for _, row := range rows {
		tr, err := New(benchKeys(10), append(row.opts, WithBase(base))...)
		require.NoError(b, err)
		b.Run(row.name, func(b *testing.B) {
			req := benchRequest()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := tr.RoundTrip(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
