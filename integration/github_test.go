package integration_test

// github.com/google/go-github/v93 with credpool.
//
// Recommended SDK settings: github.WithDisableRateLimitCheck(). go-github has
// no retries of its own (SleepUntilPrimaryRateLimitResetWhenRateLimited is an
// opt-in per request: leave it off), so credpool's rotation and backoff are
// all the retrying there is: TestGitHubRetries measures 4 upstream attempts
// for one call during a 503 storm and 2 when every token is revoked or rate
// limited. But go-github remembers the rate limit of the last response it saw
// and refuses the next calls locally, without a request, until that reset:
// with a pool, that is one token's limit blocking every token
// (TestGitHubRateLimitCheck). WithDisableRateLimitCheck hands that job to
// credpool, which cools only the spent token.
//
// GitHub has no streaming API and no quota or billing error: a spent token
// is a rate limit (403 or 429 with x-ratelimit-remaining: 0).

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/credpool/credpool"
	"github.com/google/go-github/v93/github"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var gitHubTokens = []string{"ghp_PoolTokenZero0000000000000000000Gg66", "ghp_PoolTokenOne11111111111111111111Hh77"}

// GitHub's real error bodies (see /work/shared/reference/provider-errors.md).
const (
	gitHubBadCredentials = `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`
	gitHubPrimaryLimit   = `{"message":"API rate limit exceeded for user ID 1234567. If you reach out to GitHub Support for help, please include the request ID 0400:1A2B:3C4D5E:6F7A8B:65F0A1B2 and timestamp 2026-03-01 12:00:00 UTC.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api","status":"403"}`
	gitHubSecondaryLimit = `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0400:1A2B:3C4D5E:6F7A8B:65F0A1B2.","documentation_url":"https://docs.github.com/free-pro-team@latest/rest/overview/resources-in-the-rest-api#secondary-rate-limits","status":"403"}`
	gitHubNotAccessible  = `{"message":"Resource not accessible by personal access token","documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"403"}`
	gitHubServerError    = `{"message":"Server Error"}`

	gitHubUser = `{"login":"octocat","id":583231,"node_id":"MDQ6VXNlcjU4MzIzMQ==","type":"User","site_admin":false,"name":"The Octocat"}`
)

// gitHubRate answers with GitHub's rate-limit headers: remaining requests, and
// a reset in epoch seconds resetIn from now.
func gitHubRate(status int, body string, remaining int, resetIn time.Duration, extra ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reset := strconv.FormatInt(time.Now().Add(resetIn).Unix(), 10)
		headers := append([]string{
			"X-Ratelimit-Limit", "5000",
			"X-Ratelimit-Remaining", strconv.Itoa(remaining),
			"X-Ratelimit-Used", strconv.Itoa(5000 - remaining),
			"X-Ratelimit-Resource", "core",
			"X-Ratelimit-Reset", reset,
		}, extra...)
		reply(status, body, headers...)(w, r)
	}
}

var (
	gitHubOK        = gitHubRate(http.StatusOK, gitHubUser, 4999, time.Hour)
	gitHubRevoked   = reply(http.StatusUnauthorized, gitHubBadCredentials)
	gitHubLimited   = gitHubRate(http.StatusForbidden, gitHubPrimaryLimit, 0, 10*time.Minute)
	gitHubSecondary = reply(http.StatusForbidden, gitHubSecondaryLimit, "Retry-After", "60")
	gitHubForbidden = gitHubRate(http.StatusForbidden, gitHubNotAccessible, 4987, time.Hour)
	gitHubStorm     = reply(http.StatusServiceUnavailable, gitHubServerError)
	// The last request of the token's window: a success that says nothing is left.
	gitHubLastOne = gitHubRate(http.StatusOK, gitHubUser, 0, 10*time.Minute)
)

func newGitHubServer(t *testing.T) *upstream {
	return newUpstream(t, bearerWire, gitHubRevoked)
}

// newGitHubClient gives go-github a placeholder token, which credpool must
// replace; opts add to it.
func newGitHubClient(t *testing.T, u *upstream, pool *credpool.Transport, opts ...github.ClientOptionsFunc) *github.Client {
	t.Helper()
	return newGitHubClientWith(t, u, pool, append([]github.ClientOptionsFunc{github.WithAuthToken(placeholder)}, opts...)...)
}

// newGitHubClientWith is go-github pointed at the fake server, with opts only.
func newGitHubClientWith(t *testing.T, u *upstream, pool *credpool.Transport, opts ...github.ClientOptionsFunc) *github.Client {
	t.Helper()
	client, err := github.NewClient(append([]github.ClientOptionsFunc{
		github.WithHTTPClient(&http.Client{Transport: pool}),
		github.WithEnterpriseURLs(u.url(), u.url()),
	}, opts...)...)
	require.NoError(t, err)
	return client
}

func TestGitHubPlainCall(t *testing.T) {
	tests := []struct {
		name string
		opts []github.ClientOptionsFunc
	}{
		{"placeholder token replaced", []github.ClientOptionsFunc{github.WithAuthToken(placeholder)}},
		{"no token, as in the README", []github.ClientOptionsFunc{github.WithDisableRateLimitCheck()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newGitHubServer(t)
			for _, k := range gitHubTokens {
				u.script(k, gitHubOK)
			}
			pool := newPool(t, gitHubTokens, credpool.GitHub())
			client := newGitHubClientWith(t, u, pool, tt.opts...)

			for range 2 {
				user, _, err := client.Users.Get(context.Background(), "octocat")
				require.NoError(t, err)
				assert.Equal(t, "octocat", user.GetLogin())
			}
			assert.Equal(t, gitHubTokens, u.keysSent())
			for _, h := range u.recorded() {
				assert.Equal(t, "/api/v3/users/octocat", h.path)
			}
			u.assertOnlyPoolKeys(t, gitHubTokens)
			for i := range gitHubTokens {
				s := requireKey(t, pool, i, credpool.StateOK, "")
				assert.EqualValues(t, 4999, s.Remaining, "steering read x-ratelimit-remaining")
			}
		})
	}
}

func TestGitHubKeyFailures(t *testing.T) {
	tests := []keyFailure{
		{"401 Bad credentials kills the token", gitHubRevoked, credpool.StateDead, credpool.ReasonAuthPermanent, 0},
		{"403 x-ratelimit-remaining 0 cools it until x-ratelimit-reset", gitHubLimited, credpool.StateExhausted, credpool.ReasonRateLimit, 10 * time.Minute},
		{"403 secondary rate limit cools it until retry-after", gitHubSecondary, credpool.StateExhausted, credpool.ReasonRateLimit, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newGitHubServer(t)
			u.script(gitHubTokens[0], tt.first)
			u.script(gitHubTokens[1], gitHubOK)
			pool := newPool(t, gitHubTokens, credpool.GitHub())
			client := newGitHubClient(t, u, pool)

			user, _, err := client.Users.Get(context.Background(), "octocat")
			require.NoError(t, err)
			assert.Equal(t, "octocat", user.GetLogin())
			assert.Equal(t, gitHubTokens, u.keysSent())

			tt.assertFailedOver(t, pool)

			// go-github saw only the second token's success, so it does not
			// hold back the next call.
			_, _, err = client.Users.Get(context.Background(), "octocat")
			require.NoError(t, err)
			assert.Equal(t, []string{gitHubTokens[0], gitHubTokens[1], gitHubTokens[1]}, u.keysSent())
			u.assertOnlyPoolKeys(t, gitHubTokens)
		})
	}
}

// TestGitHubForbidden: with the GitHub preset, a 403 that is not a rate limit
// is a permission the token lacks: handed back at once, the token kept.
func TestGitHubForbidden(t *testing.T) {
	u := newGitHubServer(t)
	for _, k := range gitHubTokens {
		u.script(k, gitHubForbidden)
	}
	pool := newPool(t, gitHubTokens, credpool.GitHub())
	client := newGitHubClient(t, u, pool)

	_, _, err := client.Users.Get(context.Background(), "octocat")
	var ghErr *github.ErrorResponse
	require.ErrorAs(t, err, &ghErr)
	assert.Equal(t, http.StatusForbidden, ghErr.Response.StatusCode)
	assert.Equal(t, "Resource not accessible by personal access token", ghErr.Message)
	assert.Len(t, u.recorded(), 1, "no rotation: another token would not have the permission either")
	requireKey(t, pool, 0, credpool.StateOK, "")
	requireKey(t, pool, 1, credpool.StateOK, "")
}

// TestGitHubRateLimitCheck: the first token's last request of its window
// succeeds with x-ratelimit-remaining: 0. credpool cools that token alone;
// go-github, by default, refuses every next call locally until the reset.
func TestGitHubRateLimitCheck(t *testing.T) {
	tests := []struct {
		name    string
		opts    []github.ClientOptionsFunc
		blocked bool
	}{
		{"default: go-github blocks the whole pool", nil, true},
		{"WithDisableRateLimitCheck: credpool moves to the next token", []github.ClientOptionsFunc{github.WithDisableRateLimitCheck()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newGitHubServer(t)
			u.script(gitHubTokens[0], gitHubLastOne)
			u.script(gitHubTokens[1], gitHubOK)
			pool := newPool(t, gitHubTokens, credpool.GitHub())
			client := newGitHubClient(t, u, pool, tt.opts...)

			_, _, err := client.Users.Get(context.Background(), "octocat")
			require.NoError(t, err)
			s := requireKey(t, pool, 0, credpool.StateExhausted, credpool.ReasonRateLimit)
			assertResetIn(t, s, 10*time.Minute)

			_, _, err = client.Users.Get(context.Background(), "octocat")
			if tt.blocked {
				var rlErr *github.RateLimitError
				require.ErrorAs(t, err, &rlErr)
				assert.Equal(t, []string{gitHubTokens[0]}, u.keysSent(), "no request sent, though the second token is fresh")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, gitHubTokens, u.keysSent())
			u.assertOnlyPoolKeys(t, gitHubTokens)
		})
	}
}

// TestGitHubRetries counts what reaches GitHub for one call when every token
// fails: credpool's attempts only, since go-github does not retry.
func TestGitHubRetries(t *testing.T) {
	tests := []struct {
		name     string
		every    http.HandlerFunc
		attempts int
		status   int
	}{
		{"503 storm", gitHubStorm, 4, 503},
		{"every token rate limited for 10 minutes", gitHubLimited, 2, 403},
		{"every token revoked", gitHubRevoked, 2, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newGitHubServer(t)
			for _, k := range gitHubTokens {
				u.script(k, tt.every)
			}
			pool := newPool(t, gitHubTokens, credpool.GitHub())
			client := newGitHubClient(t, u, pool, github.WithDisableRateLimitCheck())

			_, resp, err := client.Users.Get(context.Background(), "octocat")
			require.Error(t, err)
			require.NotNil(t, resp)
			assert.Equal(t, tt.status, resp.StatusCode, "the provider's response reaches the caller")
			assert.Len(t, u.recorded(), tt.attempts)
			u.assertOnlyPoolKeys(t, gitHubTokens)
		})
	}
}
