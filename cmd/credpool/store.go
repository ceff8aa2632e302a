// store.go opens the Store named by --store: a state file shared by the
// processes of one machine, or Redis shared by a fleet.

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/credpool/credpool"
	"github.com/credpool/credpool/redisstore"
	"github.com/redis/go-redis/v9"
)

// isRedisURL reports whether spec names Redis rather than a file.
func isRedisURL(spec string) bool {
	for _, scheme := range []string{"redis://", "rediss://", "unix://"} {
		if strings.HasPrefix(strings.ToLower(spec), scheme) {
			return true
		}
	}
	return false
}

// openStore opens the store spec names: a redis://, rediss:// or unix:// URL
// (see redis.ParseURL), or a file path (credpool.NewFileStore). The closer
// releases what the store holds, after the Transport is closed. A Redis that
// does not answer at once is logged, not refused: the pool works on local
// state and catches up when it returns.
func openStore(spec string, log *slog.Logger) (credpool.Store, io.Closer, error) {
	if !isRedisURL(spec) {
		s, err := credpool.NewFileStore(spec)
		if err != nil {
			return nil, nil, err
		}
		return s, io.NopCloser(nil), nil
	}
	opts, err := redis.ParseURL(spec)
	if err != nil {
		// The URL may hold a password: say what is wrong, not what it is.
		return nil, nil, usagef("--store: not a valid Redis URL: %s", redactURLError(err))
	}
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		log.Warn("credpool: Redis store does not answer yet; keys are shared once it does",
			slog.String("addr", opts.Addr), slog.String("error", err.Error()))
	}
	return redisstore.New(client), client, nil
}

// redactURLError keeps the kind of a URL parse error and drops the URL.
func redactURLError(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "://") {
		return msg[i+2:]
	}
	if strings.Contains(msg, "://") {
		return "malformed"
	}
	return msg
}

// storeName describes a store for logs, without a Redis password.
func storeName(spec string) string {
	if !isRedisURL(spec) {
		return spec
	}
	opts, err := redis.ParseURL(spec)
	if err != nil {
		return "redis"
	}
	return fmt.Sprintf("redis %s db %d", opts.Addr, opts.DB)
}
