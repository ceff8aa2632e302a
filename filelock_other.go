//go:build !unix

package credpool

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"
)

// lockFile takes an exclusive lock by creating the file at path, which only
// one process can do, and returns its release, which removes it. A lock left
// by a crashed process is broken after a minute.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if info, err := os.Stat(path); err == nil && time.Since(info.ModTime()) > time.Minute {
			os.Remove(path)
			continue
		}
		if pause(ctx, 2*time.Millisecond, nil) != nil {
			return nil, ctx.Err()
		}
	}
}
