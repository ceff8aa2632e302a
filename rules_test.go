package credpool

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestUserRules(t *testing.T) {
	cases := []struct {
		name   string
		rule   Rule
		status int
		body   string
		want   Reason
	}{
		{
			name:   "phrase on a status",
			rule:   Rule{Status: 400, Phrase: "Key Disabled", Reason: ReasonAuthPermanent},
			status: 400,
			body:   `{"msg":"x","message":"key disabled by admin"}`,
			want:   ReasonAuthPermanent,
		},
		{
			name:   "code anywhere",
			rule:   Rule{Code: "QUOTA_GONE", Reason: ReasonBilling},
			status: 418,
			body:   `{"error":{"code":"quota_gone"}}`,
			want:   ReasonBilling,
		},
		{
			name:   "status alone",
			rule:   Rule{Status: 409, Reason: ReasonServerError},
			status: 409,
			body:   `conflict`,
			want:   ReasonServerError,
		},
		{
			name:   "rule beats the tables",
			rule:   Rule{Status: 401, Reason: ReasonClientError},
			status: 401,
			body:   bodyInvalidKey,
			want:   ReasonClientError,
		},
		{
			name:   "non-matching rule falls through",
			rule:   Rule{Status: 400, Phrase: "nope", Reason: ReasonAuthPermanent},
			status: 400,
			body:   bodyContext,
			want:   ReasonClientError,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			WithRule(tc.rule).apply(cfg)
			require.NoError(t, cfg.err)
			v := cfg.classifier.classify(tc.status, http.Header{}, []byte(tc.body), time.Now(), nil)
			assert.Equal(t, tc.want, v.reason)
		})
	}
}

func TestUserRulesDoNotLeakBetweenTransports(t *testing.T) {
	a := newTransport(t, []string{keyA}, WithRule(Rule{Status: 418, Reason: ReasonAuthPermanent}))
	b := newTransport(t, []string{keyA})
	assert.Len(t, a.cfg.classifier.rules, 1)
	assert.Empty(t, b.cfg.classifier.rules)
	assert.Empty(t, defaultClassifier.rules)
}

func TestBadRules(t *testing.T) {
	cases := []struct {
		rule Rule
		want string
	}{
		{
			rule: Rule{Reason: ReasonAuth},
			want: "WithRule: a rule must set Status, Code or Phrase",
		},
		{
			rule: Rule{Status: 200, Reason: ReasonAuth},
			want: "WithRule: status 200 is not an error status",
		},
		{
			rule: Rule{Status: 400, Reason: ReasonTransport},
			want: `WithRule: reason "transport" cannot be a response's verdict`,
		},
		{
			rule: Rule{Status: 400, Reason: "made_up"},
			want: `WithRule: reason "made_up" cannot be a response's verdict`,
		},
	}
	for _, tc := range cases {
		_, err := New([]string{keyA}, WithRule(tc.rule))
		assert.EqualError(t, err, "credpool: invalid option: "+tc.want)
	}
	_, err := New([]string{keyA}, WithRefresh(nil))
	assert.EqualError(t, err, "credpool: invalid option: WithRefresh: nil Refresher")
}
