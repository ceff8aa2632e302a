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
		{"phrase on a status", Rule{Status: 400, Phrase: "Key Disabled", Reason: ReasonAuthPermanent}, 400, `{"msg":"x","message":"key disabled by admin"}`, ReasonAuthPermanent},
		{"code anywhere", Rule{Code: "QUOTA_GONE", Reason: ReasonBilling}, 418, `{"error":{"code":"quota_gone"}}`, ReasonBilling},
		{"status alone", Rule{Status: 409, Reason: ReasonServerError}, 409, `conflict`, ReasonServerError},
		{"rule beats the tables", Rule{Status: 401, Reason: ReasonClientError}, 401, bodyInvalidKey, ReasonClientError},
		{"non-matching rule falls through", Rule{Status: 400, Phrase: "nope", Reason: ReasonAuthPermanent}, 400, bodyContext, ReasonClientError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			WithRule(tc.rule)(cfg)
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
		{Rule{Reason: ReasonAuth}, "WithRule: a rule must set Status, Code or Phrase"},
		{Rule{Status: 200, Reason: ReasonAuth}, "WithRule: status 200 is not an error status"},
		{Rule{Status: 400, Reason: ReasonTransport}, `WithRule: reason "transport" cannot be a response's verdict`},
		{Rule{Status: 400, Reason: "made_up"}, `WithRule: reason "made_up" cannot be a response's verdict`},
	}
	for _, tc := range cases {
		_, err := New([]string{keyA}, WithRule(tc.rule))
		assert.EqualError(t, err, "credpool: invalid option: "+tc.want)
	}
	_, err := New([]string{keyA}, WithRefresh(nil))
	assert.EqualError(t, err, "credpool: invalid option: WithRefresh: nil Refresher")
}
