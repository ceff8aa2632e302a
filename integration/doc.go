// Package integration proves that credpool drops into the real provider SDKs
// unchanged except for their HTTP client: openai-go, anthropic-sdk-go,
// go-openai, google.golang.org/genai and go-github. Each SDK talks to an
// httptest server that speaks its provider's wire format and answers with
// the provider's real error bodies.
//
// It is a module of its own (github.com/credpool/credpool/integration), so
// the core pulls in none of the SDKs. The package has no code: the tests and
// the examples are the point.
//
// Run it with
//
//	cd integration && go vet ./... && go test -race -count=1 ./...
package integration
