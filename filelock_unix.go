//go:build unix

package credpool

import (
	"context"
	"os"
	"syscall"
	"time"
)

// lockFile takes an exclusive advisory lock (flock) on the file at path,
// creating it if needed, and returns its release. It waits for other holders
// until ctx ends.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			f.Close()
			return nil, err
		}
		if pause(ctx, 2*time.Millisecond, nil) != nil {
			f.Close()
			return nil, ctx.Err()
		}
	}
}
