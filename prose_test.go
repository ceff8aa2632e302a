package credpool

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnquoted(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{name: "single quotes", in: "invalid value: 'this key has been revoked'. supported values are: 'system'.",
			want: "invalid value:  . supported values are:  ."},
		{name: "backticks", in: "the model `x per day` does not exist", want: "the model   does not exist"},
		{name: "double quotes", in: `unknown name "system_instruction": cannot find field.`, want: "unknown name  : cannot find field."},
		{name: "typographic quotes", in: "value “revoked” and ‘leaked’ and «deactivated»", want: "value   and   and  "},
		{name: "cjk quotes", in: "模型「已吊销」不存在", want: "模型 不存在"},
		{name: "apostrophes are not quotes", in: "you're out of extra usage; the users' keys don't work",
			want: "you're out of extra usage; the users' keys don't work"},
		{name: "a quote inside a quoted word", in: "'you're here' and more", want: "  and more"},
		{name: "an unclosed quote hides the rest", in: "invalid value: 'this key has been revoked", want: "invalid value:  "},
		{name: "nothing quoted", in: "incorrect api key provided: sk-abc***", want: "incorrect api key provided: sk-abc***"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, unquoted(tc.in))
		})
	}
}

func TestPhrasesMatchWholeWords(t *testing.T) {
	cases := []struct {
		name, text, phrase string
		want               bool
	}{
		{name: "underscores read as spaces", text: "error: token_invalidated for key", phrase: "token invalidated", want: true},
		{name: "hyphens read as spaces", text: "token-revoked", phrase: "token_revoked", want: true},
		{name: "whole words only", text: "super daylight saving", phrase: "per day", want: false},
		{name: "case ignored", text: "API Key Is Invalid", phrase: "api key is invalid", want: true},
		{name: "punctuation between words", text: "limit: 0, model: x", phrase: "limit 0", want: true},
		{name: "a number is a word", text: "limit: 0.5", phrase: "limit 0", want: true},
		{name: "chinese inside a run", text: "您的余额不足，请充值", phrase: "余额不足", want: true},
		{name: "latin beside chinese", text: "api key无效", phrase: "api key无效", want: true},
		{name: "no match", text: "model not found", phrase: "api key", want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := readProse(tc.text)
			assert.Equal(t, tc.want, p.has(phrases(tc.phrase)[0]), "%q in %q", p.words, tc.phrase)
		})
	}
}
