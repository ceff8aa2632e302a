package credpoolprom_test

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/credpoolprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// exampleAPI stands in for api.openai.com: it knows one revoked key and
// accepts every other.
func exampleAPI() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("Authorization"), "REVOKED0") {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"message":"revoked","code":"token_revoked"}}`)
			return
		}
		w.Header().Set("X-Ratelimit-Remaining-Requests", "499")
		io.WriteString(w, `{"object":"list","data":[]}`)
	}))
}

// printMetrics scrapes reg as Prometheus would and prints the samples whose
// names start with one of prefixes.
func printMetrics(reg prometheus.Gatherer, prefixes ...string) {
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		for _, p := range prefixes {
			if strings.HasPrefix(sc.Text(), p) {
				fmt.Println(sc.Text())
				break
			}
		}
	}
}

// Create the Metrics first, so the Transport can send its attempts through
// Base; then observe the Transport and register the Metrics. The first key
// has been revoked: the request is replayed on the second key, and the
// metrics show one dead key, two attempts and one auth_permanent failure.
func ExampleNew() {
	api := exampleAPI()
	defer api.Close()

	m := credpoolprom.New(credpoolprom.WithConstLabels(prometheus.Labels{"pool": "openai"}))
	keys := []string{"sk-proj-example-key-number-one-REVOKED0", "sk-proj-example-key-number-two-GOODKEY1"}
	transport, err := credpool.New(keys, credpool.WithBase(m.Base(http.DefaultTransport)))
	if err != nil {
		log.Fatal(err)
	}
	m.Observe(transport)
	reg := prometheus.NewRegistry() // or prometheus.MustRegister(m)
	reg.MustRegister(m)

	client := &http.Client{Transport: transport}
	resp, err := client.Get(api.URL + "/v1/models")
	if err != nil {
		log.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	printMetrics(reg, "credpool_keys", "credpool_attempts_total", `credpool_attempt_failures_total{pool="openai",reason="auth_permanent"}`,
		"credpool_rotations_total", `credpool_upstream_latency_seconds_count`)
	// Output:
	// credpool_attempt_failures_total{pool="openai",reason="auth_permanent"} 1
	// credpool_attempts_total{pool="openai"} 2
	// credpool_keys{pool="openai",state="dead"} 1
	// credpool_keys{pool="openai",state="disabled"} 0
	// credpool_keys{pool="openai",state="exhausted"} 0
	// credpool_keys{pool="openai",state="ok"} 1
	// credpool_rotations_total{pool="openai"} 1
	// credpool_upstream_latency_seconds_count{code="2xx",pool="openai"} 1
	// credpool_upstream_latency_seconds_count{code="4xx",pool="openai"} 1
	// credpool_upstream_latency_seconds_count{code="5xx",pool="openai"} 0
	// credpool_upstream_latency_seconds_count{code="error",pool="openai"} 0
}

// With WithPerKey, each key gets its own series, labelled by its redacted
// label, never by the key.
func ExampleWithPerKey() {
	api := exampleAPI()
	defer api.Close()

	m := credpoolprom.New(credpoolprom.WithPerKey(true))
	keys := []string{"sk-proj-example-key-number-one-REVOKED0", "sk-proj-example-key-number-two-GOODKEY1"}
	transport, err := credpool.New(keys, credpool.WithBase(m.Base(http.DefaultTransport)))
	if err != nil {
		log.Fatal(err)
	}
	m.Observe(transport)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)

	resp, err := (&http.Client{Transport: transport}).Get(api.URL + "/v1/models")
	if err != nil {
		log.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	printMetrics(reg, "credpool_key_")
	// Output:
	// credpool_key_failures_total{key="sk-…KED0"} 1
	// credpool_key_failures_total{key="sk-…KEY1"} 0
	// credpool_key_remaining{key="sk-…KEY1"} 499
	// credpool_key_requests_total{key="sk-…KED0"} 1
	// credpool_key_requests_total{key="sk-…KEY1"} 1
	// credpool_key_state{key="sk-…KED0",state="dead"} 1
	// credpool_key_state{key="sk-…KED0",state="disabled"} 0
	// credpool_key_state{key="sk-…KED0",state="exhausted"} 0
	// credpool_key_state{key="sk-…KED0",state="ok"} 0
	// credpool_key_state{key="sk-…KEY1",state="dead"} 0
	// credpool_key_state{key="sk-…KEY1",state="disabled"} 0
	// credpool_key_state{key="sk-…KEY1",state="exhausted"} 0
	// credpool_key_state{key="sk-…KEY1",state="ok"} 1
	// credpool_key_strikes{key="sk-…KED0"} 0
	// credpool_key_strikes{key="sk-…KEY1"} 0
}
