module github.com/credpool/credpool/bench

go 1.25.0

require (
	github.com/cenkalti/backoff/v4 v4.3.0
	github.com/credpool/credpool v0.1.0
	github.com/hashicorp/go-retryablehttp v0.7.8
	golang.org/x/oauth2 v0.30.0
)

require (
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	golang.org/x/time v0.15.0 // indirect
)
