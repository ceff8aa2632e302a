package credpool

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

const bodyExpired = `{"error":{"message":"The access token expired","type":"invalid_request_error","code":"invalid_token"}}`

// tokenProvider accepts only the tokens in valid and answers reject to any
// other.
func tokenProvider(t *testing.T, valid *sync.Map, reject string) *provider {
	return newProvider(t, func(key string, _ int) reply {
		if _, ok := valid.Load(key); ok {
			return reply{status: 200, body: "ok"}
		}
		return reply{status: 401, body: reject}
	})
}

func TestRefreshFixesExpiredToken(t *testing.T) {
	var valid sync.Map
	p := tokenProvider(t, &valid, bodyExpired)
	var calls atomic.Int32
	refresh := func(_ context.Context, i int) (string, error) {
		calls.Add(1)
		tok := "tok-refreshed-000000000000" + string(rune('a'+i))
		valid.Store(tok, true)
		return tok, nil
	}
	tr := newTransport(t, []string{"tok-expired-0000000000000000a"}, WithRefresh(refresh))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 200, status)
	assert.Equal(t, int32(1), calls.Load())
	assert.Equal(t, StateOK, tr.Keys()[0].State)
	assert.Equal(t, []string{"tok-expired-0000000000000000a", "tok-refreshed-000000000000a"}, p.keys())
}

// TestRefreshIsSingleFlight: twenty requests meet one expired token; one
// refreshes it, and the other nineteen wait for that refresh instead of
// starting their own. synctest.Wait returns once every request is blocked,
// the leader in the refresh and the rest waiting for it, so the test counts
// the waiters rather than sleeping for them to arrive.
func TestRefreshIsSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var valid sync.Map
		p := newMemProvider(func(key string, _ int) reply {
			if _, ok := valid.Load(key); ok {
				return reply{status: 200, body: "ok"}
			}
			return reply{status: 401, body: bodyExpired}
		})
		var calls atomic.Int32
		release := make(chan struct{})
		refresh := func(context.Context, int) (string, error) {
			calls.Add(1)
			<-release // hold the refresh so that every request meets it
			valid.Store("tok-refreshed-00000000000000", true)
			return "tok-refreshed-00000000000000", nil
		}
		tr := newTransport(t, []string{"tok-expired-00000000000000000"}, WithBase(p), WithRefresh(refresh))
		const requests = 20
		var wg sync.WaitGroup
		var oks atomic.Int32
		for range requests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := tr.RoundTrip(httptestRequest(t, p.URL))
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						oks.Add(1)
					}
				}
			}()
		}
		synctest.Wait()
		assert.Equal(t, int32(1), calls.Load(), "one refresh under way")
		assert.Equal(t, requests, p.count("tok-expired-00000000000000000"), "every request met the expired token")
		close(release)
		wg.Wait()
		assert.Equal(t, int32(1), calls.Load(), "one refresh for twenty requests")
		assert.Equal(t, int32(requests), oks.Load())
	})
}

func TestRefreshSkippedForRevocation(t *testing.T) {
	var valid sync.Map
	p := tokenProvider(t, &valid, `{"error":"invalid_grant","error_description":"refresh token revoked"}`)
	var calls atomic.Int32
	tr := newTransport(t, []string{keyA, keyB}, WithRefresh(func(context.Context, int) (string, error) {
		calls.Add(1)
		return "never-used-token-0000000000", nil
	}))
	get(t, tr, p.URL)
	assert.Zero(t, calls.Load(), "a revoked credential is not refreshed")
	for _, s := range tr.Keys() {
		assert.Equal(t, StateDead, s.State)
	}
}

func TestFailingRefreshDoesNotLoop(t *testing.T) {
	var valid sync.Map
	p := tokenProvider(t, &valid, bodyExpired)
	var calls atomic.Int32
	tr := newTransport(t, []string{keyA}, WithRefresh(func(context.Context, int) (string, error) {
		calls.Add(1)
		return "", errBoom
	}))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 401, status)
	assert.Equal(t, int32(1), calls.Load())
	assert.Len(t, p.keys(), 1)
	assert.NotEqual(t, StateOK, tr.Keys()[0].State, "the verdict stands when the refresh fails")
}

func TestRefreshedTokenStillRejectedIsNotRefreshedAgain(t *testing.T) {
	var valid sync.Map
	p := tokenProvider(t, &valid, bodyExpired) // accepts nothing
	var calls atomic.Int32
	tr := newTransport(t, []string{keyA}, WithRefresh(func(context.Context, int) (string, error) {
		calls.Add(1)
		return "tok-also-bad-0000000000000000", nil
	}))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 401, status)
	assert.Equal(t, int32(1), calls.Load(), "at most one refresh per key per request")
	assert.Len(t, p.keys(), 2)
}

func TestRefreshRejectsBadToken(t *testing.T) {
	var valid sync.Map
	p := tokenProvider(t, &valid, bodyExpired)
	var logs strings.Builder
	tr := newTransport(t, []string{keyA}, WithLogger(newTestLogger(&logs)),
		WithRefresh(func(context.Context, int) (string, error) { return "token with\r\nX-Injected: 1", nil }))
	status, _ := get(t, tr, p.URL)
	assert.Equal(t, 401, status)
	assert.Len(t, p.keys(), 1, "the bad token is never sent")
	assert.Contains(t, logs.String(), "the new key has a space, control or non-ASCII byte")
	assert.NotContains(t, logs.String(), "X-Injected")
}

func TestRefreshWaitEndsWithContext(t *testing.T) {
	var valid sync.Map
	p := tokenProvider(t, &valid, bodyExpired)
	started := make(chan struct{})
	var once sync.Once
	block := make(chan struct{})
	defer close(block)
	tr := newTransport(t, []string{keyA}, WithRefresh(func(ctx context.Context, _ int) (string, error) {
		once.Do(func() { close(started) })
		select {
		case <-block:
		case <-ctx.Done():
		}
		return "", context.Canceled
	}))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if resp, err := tr.RoundTrip(httptestRequest(t, p.URL).WithContext(ctx)); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := tr.RoundTrip(httptestRequest(t, p.URL).WithContext(ctx))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	var _ http.RoundTripper = tr
}

// TestRefreshErrorIsScrubbed: a Refresher's error may quote the key it was
// refreshing, or a refresh token credpool never saw; the log line holds
// neither.
func TestRefreshErrorIsScrubbed(t *testing.T) {
	var valid sync.Map
	p := tokenProvider(t, &valid, bodyExpired)
	const refreshToken = "rt_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
	var logs syncBuffer
	tr := newTransport(t, []string{keyA}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		WithRefresh(func(context.Context, int) (string, error) {
			return "", fmt.Errorf("oauth: refreshing %s with %s: invalid_grant", keyA, refreshToken)
		}))
	get(t, tr, p.URL)
	assert.Contains(t, logs.String(), "refresh failed")
	assertNoSecret(t, "the refresh log", logs.String(), keyA)
	assert.NotContains(t, logs.String(), refreshToken[:20])
	assert.Contains(t, logs.String(), "invalid_grant", "the words that say why stay")
}

func TestRedactTokens(t *testing.T) {
	for in, want := range map[string]string{
		"token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc123 expired": "token [redacted] expired",
		"refresh_token_reused_by_another_client":                        "refresh_token_reused_by_another_client",
		"https://oauth2.googleapis.com/token returned 400":              "https://oauth2.googleapis.com/token returned 400",
		"ghp_16C7e42F292c6912E7710c838347Ae178B4a was revoked":          "[redacted] was revoked",
	} {
		assert.Equal(t, want, redactTokens(in))
	}
}
