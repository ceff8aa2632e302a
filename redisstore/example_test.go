package redisstore_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/redisstore"
	"github.com/redis/go-redis/v9"
)

// Two replicas of a service share key state through Redis: a key revoked
// under one is out of rotation for the other within milliseconds, and for
// every replica started later.
//
// It needs a Redis (REDIS_ADDR, default localhost:6379), so it has no
// Output line: go test compiles it but does not run it.
func Example() {
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "localhost:6379"
	}
	api := fakeOpenAI() // revokes the first key
	defer api.Close()
	keys := []string{"sk-proj-example-key-number-one-REVOKED0", "sk-proj-example-key-number-two-GOODKEY1"}

	// Each replica, in its own process, has its own client and store: the
	// same Redis, namespace and salt make them share state.
	replica := func() (*credpool.Transport, func()) {
		client := redis.NewClient(&redis.Options{Addr: addr}) // or NewFailoverClient, NewClusterClient
		store := redisstore.New(client, redisstore.WithNamespace("example-service"))
		t, err := credpool.New(keys, credpool.WithStore(store), credpool.WithStoreSalt([]byte("example-service salt")))
		if err != nil {
			log.Fatal(err)
		}
		return t, func() { t.Close(); client.Close() } // the Transport first: it flushes to Redis
	}
	replicaA, closeA := replica()
	defer closeA()
	replicaB, closeB := replica()
	defer closeB()

	resp, err := (&http.Client{Transport: replicaA}).Get(api.URL) // replica A meets the revoked key
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()

	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if replicaB.Keys()[0].State == credpool.StateDead {
			break
		}
	}
	fmt.Println("replica B:", replicaB.Keys()[0].Label, replicaB.Keys()[0].State)
	// With a Redis running, it prints:
	// replica B: sk-…KED0 dead
}

// fakeOpenAI answers like OpenAI: 401 for a revoked key, 200 for the others.
func fakeOpenAI() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("Authorization"), "REVOKED0") {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"message":"Your authentication token has been revoked.","code":"token_revoked"}}`)
			return
		}
		io.WriteString(w, `{"object":"list","data":[]}`)
	}))
}
