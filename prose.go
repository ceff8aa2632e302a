package credpool

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Providers quote the caller's own input back in their error messages ("Invalid
// value: 'this key has been revoked'", "The model `x per day` does not
// exist"). Whatever words a classifier reads in a message, a caller can put
// there, so a message is read in two steps: the quoted spans go first, then
// what is left becomes words, matched as whole words only.

// prose is an error message made ready to read: its quoted spans removed and
// the rest lower case. words is the same text as a sequence of words, each
// run of anything but letters and digits one space, with a space at each end,
// so that "token_revoked", "token-revoked" and "Token revoked" read alike and
// "per day" does not match "super daylight".
type prose struct {
	text  string  // lower case, quoted spans removed: hints are read from it
	words string  // text as " word word ... ": phrases are matched in it
	seen  wordSet // the words of words
}

// readProse prepares msg, already lower case, for reading.
func readProse(msg string) prose {
	if msg == "" {
		return prose{words: " "} // what words makes of nothing, without building it
	}
	text := unquoted(msg)
	p := prose{text: text, words: words(text)}
	p.seen.addWords(p.words)
	return p
}

// has reports whether the message says phrase, a normalized phrase from
// phrases.
func (p *prose) has(phrase string) bool { return p.hasKeyed(phrase, firstWordKey(phrase)) }

// hasKeyed is has for a phrase whose firstWordKey is key. The tables hold
// hundreds of phrases and a message a few dozen words: a phrase whose first
// word the message lacks is turned away without a search.
func (p *prose) hasKeyed(phrase string, key uint32) bool {
	return p.seen.mayHave(key) && containsPhrase(p.words, phrase)
}

// wordSet is a Bloom filter of a text's words, 512 bits, two per word: it
// may say yes to a word the text lacks, never no to one it has.
type wordSet [8]uint64

// addWords adds each word of words, as words returns them.
func (s *wordSet) addWords(words string) {
	for words != "" {
		var w string
		w, words, _ = strings.Cut(words, " ")
		if h := wordHash(w); w != "" && h != 0 {
			s[h>>6&7] |= 1 << (h & 63)
			s[h>>15&7] |= 1 << (h >> 9 & 63)
		}
	}
}

// mayHave reports whether the set may hold the word whose hash is key; a key
// of 0 rules nothing out.
func (s *wordSet) mayHave(key uint32) bool {
	return key == 0 || s[key>>6&7]&(1<<(key&63)) != 0 && s[key>>15&7]&(1<<(key>>9&63)) != 0
}

// wordHash is FNV-1a, 32 bits.
func wordHash(w string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(w); i++ {
		h = (h ^ uint32(w[i])) * 16777619
	}
	return h
}

// firstWordKey is the hash of a phrase's first word, which must be among
// the words of a text that has the phrase; 0 for a phrase without one, such
// as a Chinese phrase, matched inside a run of characters.
func firstWordKey(phrase string) uint32 {
	if phrase == "" || phrase[0] != ' ' {
		return 0
	}
	w, _, _ := strings.Cut(phrase[1:], " ")
	if w == "" {
		return 0
	}
	return wordHash(w)
}

// containsPhrase reports whether words, as words returns them, contains
// phrase, as phrases returns it: as whole words for a phrase in a script
// that separates words with spaces, as a substring for one that does not
// (Chinese and Japanese: "余额不足" inside "您的余额不足，请充值").
func containsPhrase(words, phrase string) bool {
	if phrase == "" {
		return false
	}
	return strings.Contains(words, phrase)
}

// quotePairs maps each opening quote to its closing one. The ASCII quotes
// close themselves.
var quotePairs = map[rune]rune{
	'\'': '\'', '"': '"', '`': '`',
	'‘': '’', '“': '”', '«': '»', '‹': '›', '「': '」', '『': '』', '„': '“',
}

// unquoted returns s without its quoted spans, each one space. A single
// quote, which is also the apostrophe, opens a span only where no word goes
// on through it, so "you're" and "users' keys" open nothing, and closes one
// only where no word goes on after it; every other quote opens and closes
// wherever it stands. An unclosed span runs to the end: what cannot be told
// apart from the caller's words is not read.
func unquoted(s string) string {
	if !hasQuote(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prev := ' '
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		closer, opens := quotePairs[r]
		if !opens || r == '\'' && isWordRune(prev) {
			b.WriteString(s[i : i+n])
			prev = r
			i += n
			continue
		}
		end := closingQuote(s[i+n:], closer)
		b.WriteByte(' ')
		if end < 0 {
			break
		}
		i += n + end
		prev = ' '
	}
	return b.String()
}

// hasQuote reports whether s has any quote of quotePairs. The ASCII ones are
// a quick look; the others are looked for only in a text that is not all
// ASCII, which for the messages of most providers it is.
func hasQuote(s string) bool {
	if strings.ContainsAny(s, "'\"`") {
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return strings.ContainsAny(s[i:], "‘“«‹「『„")
		}
	}
	return false
}

// closingQuote returns how many bytes of s, which follows an opening quote,
// the span takes up to and including its closing quote; -1 if it never
// closes.
func closingQuote(s string, closer rune) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		if r != closer {
			continue
		}
		next, _ := utf8.DecodeRuneInString(s[i:])
		if closer != '\'' || i == len(s) || !isWordRune(next) {
			return i
		}
	}
	return -1
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf { // most of every message: no table to look up
		return 'a' <= r|0x20 && r|0x20 <= 'z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// words turns text into " word word ... ": letters and digits kept, every
// other run one space, and a space between a Latin word and an ideograph
// that touch ("api key无效" reads "api key 无效").
func words(text string) string {
	var b strings.Builder
	b.Grow(len(text) + 2)
	b.WriteByte(' ')
	space, wide := true, false
	for _, r := range text {
		if !isWordRune(r) {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		w := r >= 0x2E80 // CJK and the scripts past it: no spaces between words
		if !space && w != wide {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(r))
		space, wide = false, w
	}
	if !space {
		b.WriteByte(' ')
	}
	return b.String()
}

// phrases turns the table entries ss into phrases for containsPhrase: Latin
// ones as " word word " so they match only whole words, and those written
// without spaces between words (Chinese) bare, to match inside a run.
func phrases(ss ...string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		w := words(s)
		if wide, _ := utf8.DecodeRuneInString(strings.TrimSpace(w)); wide >= 0x2E80 {
			w = strings.TrimSpace(w)
		}
		out = append(out, w)
	}
	return out
}
