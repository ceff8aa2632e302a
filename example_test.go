package credpool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/credpool/credpool"
)

// fakeOpenAI stands in for api.openai.com: it knows one revoked key and
// accepts every other.
func fakeOpenAI() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("Authorization"), "REVOKED0") {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"message":"This API key has been deactivated.","type":"invalid_request_error","code":"account_deactivated"}}`)
			return
		}
		io.WriteString(w, `{"object":"list","data":[]}`)
	}))
}

// The first key has been revoked. credpool kills it on its first 401 and
// replays the request on the second key; the caller sees only the success.
func ExampleNew() {
	api := fakeOpenAI()
	defer api.Close()

	keys := []string{"sk-proj-example-key-number-one-REVOKED0", "sk-proj-example-key-number-two-GOODKEY1"}
	transport, err := credpool.New(keys)
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: transport}

	resp, err := client.Get(api.URL + "/v1/models")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
	for _, s := range transport.Keys() {
		fmt.Println(s.Label, s.State, s.Reason)
	}
	// Output:
	// 200 OK
	// sk-…KED0 dead auth_permanent
	// sk-…KEY1 ok
}

// Anthropic takes the raw key in x-api-key; Azure OpenAI in api-key.
func ExampleWithHeader() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("x-api-key set:", r.Header.Get("X-Api-Key") != "")
		fmt.Println("Authorization:", r.Header.Get("Authorization") == "")
	}))
	defer api.Close()

	transport, err := credpool.New([]string{"sk-ant-api03-example-key-0000000000000000"},
		credpool.WithHeader("x-api-key", ""),
		credpool.WithHosts("127.0.0.1"), // in production: "api.anthropic.com"
	)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := (&http.Client{Transport: transport}).Get(api.URL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	// Output:
	// x-api-key set: true
	// Authorization: true
}

// When every key is dead, or cooling for longer than WithMaxWait, requests
// fail fast with an error that says why.
func ExampleErrNoKeys() {
	api := fakeOpenAI()
	defer api.Close()

	transport, err := credpool.New([]string{"sk-proj-example-key-number-one-REVOKED0"})
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: transport}
	resp, _ := client.Get(api.URL) // the provider's 401 is handed back
	resp.Body.Close()

	_, err = client.Get(api.URL) // no key left: nothing is sent
	fmt.Println(errors.Is(err, credpool.ErrNoKeys))
	var noKeys *credpool.NoKeysError
	if errors.As(err, &noKeys) {
		fmt.Println(noKeys.Dead, "dead")
	}
	// Output:
	// true
	// 1 dead
}

// New names a bad key by its index, never by its value.
func ExampleKeyError() {
	_, err := credpool.New([]string{"sk-good-key-0000000000000000", "sk-pasted-with-a-newline\n"})
	fmt.Println(err)
	fmt.Println(errors.Is(err, credpool.ErrInvalidKey))
	// Output:
	// credpool: key 1 has a space, control or non-ASCII byte at offset 24
	// true
}

// Two replicas share key state through a file (use redisstore for replicas
// on several machines). A key revoked under one is out of rotation for the
// other at once, and stays dead across restarts.
func ExampleNewFileStore() {
	api := fakeOpenAI()
	defer api.Close()
	dir, _ := os.MkdirTemp("", "credpool")
	defer os.RemoveAll(dir)
	store, err := credpool.NewFileStore(filepath.Join(dir, "keys.json"))
	if err != nil {
		log.Fatal(err)
	}

	keys := []string{"sk-proj-example-key-number-one-REVOKED0", "sk-proj-example-key-number-two-GOODKEY1"}
	replicaA, _ := credpool.New(keys, credpool.WithStore(store))
	defer replicaA.Close()
	replicaB, _ := credpool.New(keys, credpool.WithStore(store))
	defer replicaB.Close()

	resp, _ := (&http.Client{Transport: replicaA}).Get(api.URL) // replica A meets the revoked key
	resp.Body.Close()

	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if replicaB.Keys()[0].State == credpool.StateDead {
			break
		}
	}
	fmt.Println("replica B:", replicaB.Keys()[0].Label, replicaB.Keys()[0].State)
	// Output:
	// replica B: sk-…KED0 dead
}

// A stored response lives under the key that created it: Pin sends the
// request that refers to it with that key, by the label WithKeyHeader put on
// the first response, and never with another.
func ExamplePin() {
	api := fakeOpenAI()
	defer api.Close()

	keys := []string{"sk-proj-example-key-number-one-GOODKEY0", "sk-proj-example-key-number-two-GOODKEY1"}
	transport, err := credpool.New(keys, credpool.WithKeyHeader("Credpool-Key"))
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: transport}

	resp, err := client.Post(api.URL+"/v1/responses", "application/json", strings.NewReader(`{"store":true}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	label := resp.Header.Get("Credpool-Key")
	fmt.Println("created with", label)

	for range 3 {
		req, _ := http.NewRequestWithContext(credpool.Pin(context.Background(), label), http.MethodGet,
			api.URL+"/v1/responses/resp_123", nil)
		resp, err := client.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println("read with", resp.Header.Get("Credpool-Key"))
	}
	// Output:
	// created with sk-…KEY0
	// read with sk-…KEY0
	// read with sk-…KEY0
	// read with sk-…KEY0
}

// Two keys of one OpenAI organization and one of another: when the first
// says its organization is out of quota, its sibling cools with it, unprobed,
// and the request goes to the other organization's key.
func ExampleWithGroups() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("Authorization"), "ACME0001") {
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","code":"insufficient_quota"}}`)
			return
		}
		fmt.Println("served with", r.Header.Get("Authorization")[len("Bearer sk-proj-example-key-"):])
		io.WriteString(w, `{"object":"list","data":[]}`)
	}))
	defer api.Close()

	keys := []string{"sk-proj-example-key-acme-ACME0001", "sk-proj-example-key-acme-ACME0002", "sk-proj-example-key-beta-BETA0003"}
	transport, err := credpool.New(keys, credpool.WithStrategy(credpool.FillFirst),
		credpool.WithGroups("acme", "acme", "beta"))
	if err != nil {
		log.Fatal(err)
	}
	resp, err := (&http.Client{Transport: transport}).Get(api.URL + "/v1/models")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	for _, s := range transport.Keys() {
		fmt.Println(s.Label, s.State, s.Reason)
	}
	// Output:
	// served with beta-BETA0003
	// sk-…0001 exhausted billing
	// sk-…0002 exhausted billing
	// sk-…0003 ok
}

// The free key serves while it can; the paid key takes over while it is
// rate limited, and hands back the moment the free key returns.
func ExampleWithTiers() {
	var freeLimited atomic.Bool
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Authorization")[len("Bearer sk-proj-example-key-"):]
		if freeLimited.Load() && key == "free-FREE0001" {
			w.Header().Set("Retry-After", "600")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`)
			return
		}
		fmt.Println("served with", key)
	}))
	defer api.Close()

	keys := []string{"sk-proj-example-key-paid-PAID0001", "sk-proj-example-key-free-FREE0001"}
	transport, err := credpool.New(keys, credpool.WithTiers(1, 0))
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: transport}
	get := func() {
		resp, err := client.Get(api.URL + "/v1/models")
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	freeLimited.Store(true)
	get() // the free key cools for 10 minutes; the paid key serves
	get()
	freeLimited.Store(false)
	transport.ResetKey(1) // or wait the 10 minutes out
	get()
	// Output:
	// served with free-FREE0001
	// served with paid-PAID0001
	// served with paid-PAID0001
	// served with free-FREE0001
}

// A conversation keeps to one key while that key is usable, so that the
// provider's per-key prompt cache serves every turn; another conversation
// may land on another key.
func ExampleSession() {
	api := fakeOpenAI()
	defer api.Close()

	keys := []string{"sk-proj-example-key-number-one-GOODKEY0", "sk-proj-example-key-number-two-GOODKEY1",
		"sk-proj-example-key-number-three-GOODKEY2"}
	transport, err := credpool.New(keys, credpool.WithKeyHeader("Credpool-Key"))
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: transport}

	ctx := credpool.Session(context.Background(), "conversation-42")
	used := map[string]bool{}
	for range 5 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api.URL+"/v1/chat/completions", strings.NewReader(`{}`))
		resp, err := client.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		used[resp.Header.Get("Credpool-Key")] = true
	}
	fmt.Println("five turns, keys used:", len(used))
	// Output:
	// five turns, keys used: 1
}

// SetKeys rotates secrets without a restart: the key that stays keeps its
// state (here, dead), the new key joins, and the removed key leaves.
func ExampleTransport_SetKeys() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("Authorization"), "OLD1") {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"message":"Incorrect API key provided.","code":"invalid_api_key"}}`)
			return
		}
		io.WriteString(w, `{"object":"list","data":[]}`)
	}))
	defer api.Close()

	transport, err := credpool.New([]string{"sk-proj-example-key-OLD1", "sk-proj-example-key-OLD2"},
		credpool.WithStrategy(credpool.FillFirst))
	if err != nil {
		log.Fatal(err)
	}
	resp, err := (&http.Client{Transport: transport}).Get(api.URL + "/v1/models")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()

	// The secret manager now holds OLD1 (still revoked) and NEW3; OLD2 is gone.
	if err := transport.SetKeys([]string{"sk-proj-example-key-OLD1", "sk-proj-example-key-NEW3"}); err != nil {
		log.Fatal(err)
	}
	for _, s := range transport.Keys() {
		fmt.Println(s.Label, s.State, s.Requests)
	}
	// Output:
	// …OLD1 dead 1
	// …NEW3 ok 0
}

// DisableKey takes a key out of rotation by an operator's decision: Reset,
// which revives dead keys, leaves it out, and only EnableKey brings it back.
func ExampleTransport_DisableKey() {
	transport, err := credpool.New([]string{"sk-proj-example-key-AAA1", "sk-proj-example-key-BBB2"})
	if err != nil {
		log.Fatal(err)
	}
	if err := transport.DisableKey(0); err != nil {
		log.Fatal(err)
	}
	transport.Reset()
	fmt.Println(transport.Keys()[0].Label, transport.Keys()[0].State)
	if err := transport.EnableKey(0); err != nil {
		log.Fatal(err)
	}
	fmt.Println(transport.Keys()[0].Label, transport.Keys()[0].State)
	// Output:
	// …AAA1 disabled
	// …AAA1 ok
}

// WithRecheck gives dead keys a way back on the operator's terms: every six
// hours, each dead key sends one GET /v1/models, which costs nothing, and a
// key that gets a 2xx is back in rotation. Close stops the re-checks.
func ExampleWithRecheck() {
	keys := []string{"sk-proj-example-key-AAA1", "sk-proj-example-key-BBB2"}
	transport, err := credpool.New(keys,
		credpool.WithRecheck(6*time.Hour, http.MethodGet, "https://api.openai.com/v1/models"))
	if err != nil {
		log.Fatal(err)
	}
	defer transport.Close()
	client := &http.Client{Transport: transport}
	_ = client // use client as any other; transport.Stats().Rechecks counts the re-checks
}

// WithKeyLimits keeps each key under its own limit: while a stream holds the
// first key's one place in flight, the next request goes to the second key,
// and once the stream is closed, the first key serves again.
func ExampleWithKeyLimits() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served by "+r.Header.Get("Authorization")[len("Bearer sk-proj-example-key-"):])
	}))
	defer api.Close()

	keys := []string{"sk-proj-example-key-AAA1", "sk-proj-example-key-BBB2"}
	transport, err := credpool.New(keys, credpool.WithStrategy(credpool.FillFirst),
		credpool.WithKeyLimits(credpool.KeyLimit{InFlight: 1, PerMinute: 500}))
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: transport}
	get := func() string {
		resp, err := client.Get(api.URL)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}

	stream, err := client.Get(api.URL) // a response whose body is still open, as a stream's is
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(get())
	stream.Body.Close()
	fmt.Println(get())
	// Output:
	// served by BBB2
	// served by AAA1
}
