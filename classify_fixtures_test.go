package credpool

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixtureDir holds one JSON file per provider, each an array of fixtures:
// real error responses from the providers' issue trackers and docs, with the
// verdict the classifier must reach on them.
const fixtureDir = "testdata/classify"

// fixtureNow is the fixed clock the fixtures are written against: absolute
// reset times in them (HTTP-dates, RFC 3339, epoch seconds and milliseconds,
// "regain access on" dates) turn into deterministic hints relative to it.
var fixtureNow = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// fixtureHintTolerance absorbs float rounding in fractional hints such as
// "1.984999999s" or a retry-after-ms of "1500".
const fixtureHintTolerance = time.Millisecond

// fixtureProviders are the files testdata/classify must contain.
var fixtureProviders = []string{
	"openai", "anthropic", "gemini", "azure", "bedrock", "openrouter", "groq", "mistral",
	"deepseek", "xai", "together", "fireworks", "cohere", "perplexity", "litellm",
	"dashscope", "moonshot", "zhipu", "llamacpp", "vllm", "ollama", "github", "stripe",
	"generic",
}

// The corpus must stay broad: at least this many real responses, from at
// least this many providers, gateways and local engines.
const (
	minFixtures         = 250
	minFixtureProviders = 20
)

// fixtureReasons are the reasons the classifier can give. ReasonTransport is
// missing on purpose: it comes from network errors, never from a response.
var fixtureReasons = map[Reason]bool{
	ReasonAuthPermanent: true,
	ReasonAuth:          true,
	ReasonBilling:       true,
	ReasonRateLimit:     true,
	ReasonOverloaded:    true,
	ReasonServerError:   true,
	ReasonClientError:   true,
}

// fixture is one provider error response and the verdict expected for it.
// Want.Hint is a time.ParseDuration string; empty means the verdict must not
// be hinted, "0s" means hinted with a zero wait (a reset already past).
type fixture struct {
	Name    string            `json:"name"`
	Source  string            `json:"source"` // where the response was seen: provider docs, SDK source, a public issue
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body"`
	Want    struct {
		Reason string `json:"reason"`
		Hint   string `json:"hint,omitempty"`
		Final  bool   `json:"final"`
	} `json:"want"`
}

// header returns the fixture's headers as an http.Header, with canonical keys
// as a real response would carry them.
func (f *fixture) header() http.Header {
	h := make(http.Header, len(f.Headers))
	for k, v := range f.Headers {
		h.Set(k, v)
	}
	return h
}

// fixtureFile is the content of one testdata/classify/*.json file.
type fixtureFile struct {
	Name  string // file name without ".json", e.g. "openai"
	Cases []fixture
}

// fixtureFiles loads every testdata/classify/*.json file, in name order.
// Decoding is strict: an unknown field (a typo such as "hints") fails the
// test instead of silently dropping an expectation.
func fixtureFiles(t testing.TB) []fixtureFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, paths, "no fixtures in %s", fixtureDir)
	files := make([]fixtureFile, 0, len(paths))
	for _, path := range paths {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var cases []fixture
		require.NoError(t, dec.Decode(&cases), "decoding %s", path)
		files = append(files, fixtureFile{
			Name:  strings.TrimSuffix(filepath.Base(path), ".json"),
			Cases: cases,
		})
	}
	return files
}

// fixtureCases returns every fixture of every file, in file then case order.
// Fuzz tests use their bodies, statuses and headers as seeds.
func fixtureCases(t testing.TB) []fixture {
	t.Helper()
	var all []fixture
	for _, f := range fixtureFiles(t) {
		all = append(all, f.Cases...)
	}
	return all
}

// TestFixtureVerdicts runs the default classifier on every fixture and checks
// the reason, finality and wait hint it reaches.
func TestFixtureVerdicts(t *testing.T) {
	for _, file := range fixtureFiles(t) {
		t.Run(file.Name, func(t *testing.T) {
			for _, fx := range file.Cases {
				t.Run(fx.Name, func(t *testing.T) {
					got := defaultClassifier.classify(fx.Status, fx.header(), []byte(fx.Body), fixtureNow, nil)

					assert.Equal(t, Reason(fx.Want.Reason), got.reason, "reason")
					assert.Equal(t, fx.Want.Final, got.final, "final")
					if fx.Want.Hint == "" {
						assert.False(t, got.hinted, "hinted (hint %v)", got.hint)
						return
					}
					want, err := time.ParseDuration(fx.Want.Hint)
					require.NoError(t, err, "want.hint")
					if assert.True(t, got.hinted, "hinted") {
						assert.InDelta(t, float64(want), float64(got.hint), float64(fixtureHintTolerance),
							"hint: want %v, got %v", want, got.hint)
					}
				})
			}
		})
	}
}

// TestFixtureFilesWellFormed checks the fixtures themselves: every provider
// file is present with at least two cases, and every case has a unique name,
// an error status, a known reason and an expectation the classifier's
// contract allows.
func TestFixtureFilesWellFormed(t *testing.T) {
	files := fixtureFiles(t)
	seen := make(map[string]bool, len(files))
	for _, file := range files {
		seen[file.Name] = true
		t.Run(file.Name, func(t *testing.T) {
			assert.GreaterOrEqual(t, len(file.Cases), 2, "cases in %s.json", file.Name)
			names := make(map[string]bool, len(file.Cases))
			for i, fx := range file.Cases {
				assert.NotEmpty(t, strings.TrimSpace(fx.Name), "case %d has no name", i)
				assert.NotEmpty(t, strings.TrimSpace(fx.Source), "%q names no source", fx.Name)
				assert.False(t, names[fx.Name], "duplicate case name %q", fx.Name)
				names[fx.Name] = true

				assert.True(t, fx.Status >= 400 && fx.Status <= 599, "%q: status %d not in 400..599", fx.Name, fx.Status)
				reason := Reason(fx.Want.Reason)
				assert.True(t, fixtureReasons[reason], "%q: unknown reason %q", fx.Name, fx.Want.Reason)
				if fx.Want.Final {
					assert.Equal(t, ReasonAuthPermanent, reason, "%q: only a dead key can be final", fx.Name)
				}
				if fx.Want.Hint != "" {
					d, err := time.ParseDuration(fx.Want.Hint)
					if assert.NoError(t, err, "%q: hint", fx.Name) {
						assert.GreaterOrEqual(t, d, time.Duration(0), "%q: negative hint", fx.Name)
					}
					assert.NotContains(t, []Reason{ReasonAuthPermanent, ReasonClientError}, reason,
						"%q: a %s verdict carries no hint", fx.Name, reason)
				}
				for k := range fx.Headers {
					assert.NotEmpty(t, strings.TrimSpace(k), "%q: empty header name", fx.Name)
				}
			}
		})
	}
	for _, p := range fixtureProviders {
		assert.True(t, seen[p], "missing %s/%s.json", fixtureDir, p)
	}
	assert.GreaterOrEqual(t, len(fixtureCases(t)), minFixtures, "fixtures")
	assert.GreaterOrEqual(t, len(files), minFixtureProviders, "fixture files")
}

// TestCorpusThroughHTTP sends every fixture through a Transport over real
// HTTP: a provider answers the fixture to the first key and 200 to the
// second, and the test checks what the caller and the pool see. A dead key
// dies and a cooling one cools, the request moving on to the second key; the
// provider's trouble is retried with the first key kept in rotation; a
// request at fault gets the provider's response back, byte for byte, after
// one attempt, and no key pays.
func TestCorpusThroughHTTP(t *testing.T) {
	for _, file := range fixtureFiles(t) {
		t.Run(file.Name, func(t *testing.T) {
			for _, fx := range file.Cases {
				t.Run(fx.Name, func(t *testing.T) {
					t.Parallel()
					p := newProvider(t, func(key string, _ int) reply {
						if key == keyA {
							return reply{status: fx.Status, header: fx.Headers, body: fx.Body}
						}
						return reply{status: 200, body: `{"ok":true}`}
					})
					tr := newTransport(t, []string{keyA, keyB}, WithStrategy(FillFirst), WithMaxWait(0))
					req, err := http.NewRequest(http.MethodPost, p.URL+"/v1/chat/completions",
						strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
					require.NoError(t, err)
					resp, err := tr.RoundTrip(req)
					require.NoError(t, err)
					body, err := io.ReadAll(resp.Body)
					require.NoError(t, err)
					resp.Body.Close()
					a := statusOf(t, tr, keyA)

					switch want := Reason(fx.Want.Reason); want {
					case ReasonClientError:
						assert.Equal(t, fx.Status, resp.StatusCode, "handed back")
						assert.Equal(t, fx.Body, string(body), "untouched")
						assert.Equal(t, []string{keyA}, p.keys(), "one attempt")
						assert.Equal(t, StateOK, a.State, "no key pays")
					case ReasonOverloaded, ReasonServerError:
						assert.Equal(t, StateOK, a.State, "the key is kept")
						if fx.Want.Hint == "" {
							assert.Equal(t, http.StatusOK, resp.StatusCode, "retried")
						}
					default:
						assert.Equal(t, http.StatusOK, resp.StatusCode, "replayed on the second key")
						assert.Equal(t, []string{keyA, keyB}, p.keys())
						assert.Equal(t, want, a.Reason)
						wantState := StateExhausted
						if want == ReasonAuthPermanent {
							wantState = StateDead
						}
						assert.Equal(t, wantState, a.State)
					}
				})
			}
		})
	}
}
