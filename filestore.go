package credpool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// FileStore is a Store in one JSON file, for the processes of one machine:
// a service that restarts, or several workers side by side. Writes take a
// file lock, merge, and replace the file atomically (a temporary file
// renamed over it), so a crash never leaves it half written. Watchers poll
// the file for changes.
type FileStore struct {
	path string
	poll time.Duration
}

// fileFormat is the file's content. Format marks it as credpool's, so a
// foreign JSON file is refused rather than overwritten.
type fileFormat struct {
	Format  string            `json:"format"`
	Records map[string]Record `json:"records"`
}

const fileFormatName = "credpool/v1"

// NewFileStore returns a store in the file at path, which need not exist yet
// (its folder must). A file that exists but is not credpool's, or is
// corrupt, is an error, and is left as it is.
func NewFileStore(path string) (*FileStore, error) {
	fsStore := &FileStore{path: path, poll: 100 * time.Millisecond}
	if _, err := fsStore.read(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("credpool: file store %s: %w", path, err)
	}
	return fsStore, nil
}

// read returns the records in the file; none if it does not exist.
func (f *FileStore) read() (map[string]Record, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("credpool: file store %s: %w", f.path, err)
	}
	var content fileFormat
	if err := json.Unmarshal(data, &content); err != nil {
		return nil, fmt.Errorf("credpool: file store %s: corrupt: %w", f.path, err)
	}
	if content.Format != fileFormatName {
		return nil, fmt.Errorf("credpool: file store %s: not a credpool state file (format %q)", f.path, content.Format)
	}
	if content.Records == nil {
		content.Records = map[string]Record{}
	}
	return content.Records, nil
}

// Save merges r into the file, under an exclusive lock shared with every
// process using the file.
func (f *FileStore) Save(ctx context.Context, r Record) error {
	unlock, err := lockFile(ctx, f.path+".lock")
	if err != nil {
		return fmt.Errorf("credpool: file store %s: lock: %w", f.path, err)
	}
	defer unlock()
	records, err := f.read()
	if err != nil {
		return err
	}
	if old, ok := records[r.Fingerprint]; ok {
		r = old.Merge(r)
	}
	records[r.Fingerprint] = r
	data, err := json.MarshalIndent(fileFormat{Format: fileFormatName, Records: records}, "", "  ")
	if err != nil {
		return fmt.Errorf("credpool: file store %s: %w", f.path, err)
	}
	return f.replace(data)
}

// replace writes data to a temporary file beside the store and renames it
// over the store, so readers see the old file or the new one, never a part.
func (f *FileStore) replace(data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(f.path), filepath.Base(f.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("credpool: file store %s: %w", f.path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		return fmt.Errorf("credpool: file store %s: %w", f.path, err)
	}
	return nil
}

// Load returns the records of keys in the file. A record that is not one
// (an unknown state, an absurd epoch, another key's record) is left out and
// reported, the rest returned.
func (f *FileStore) Load(_ context.Context, keys []string) ([]Record, error) {
	records, err := f.read()
	if err != nil {
		return nil, err
	}
	return f.pick(records, keys)
}

// pick returns the valid records of keys, and an error for each invalid one.
func (f *FileStore) pick(records map[string]Record, keys []string) ([]Record, error) {
	var out []Record
	var errs []error
	for _, k := range keys {
		r, ok := records[k]
		if !ok {
			continue
		}
		if err := r.check(k); err != nil {
			errs = append(errs, fmt.Errorf("%w: file store %s: record %s: %w", ErrCorruptRecord, f.path, k, err))
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// Watch applies the records of keys in the file, then those of each new
// version of the file, polling it for changes, until ctx ends. Invalid
// records are skipped (Load reports them). A file that turns corrupt ends
// the watch with an error; the Transport keeps its state and watches again
// later.
func (f *FileStore) Watch(ctx context.Context, keys []string, apply func(Record)) error {
	var seen fs.FileInfo
	tick := time.NewTicker(f.poll)
	defer tick.Stop()
	for {
		info, err := os.Stat(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("credpool: file store %s: %w", f.path, err)
		case changed(seen, info):
			records, err := f.read()
			if err != nil {
				return err
			}
			valid, _ := f.pick(records, keys)
			for _, r := range valid {
				apply(r)
			}
			seen = info
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// changed reports whether the file is a new version: every Save renames a
// new file into place, so a new inode says so even when the clock's
// granularity hides a change of mtime.
func changed(seen, now fs.FileInfo) bool {
	return seen == nil || !os.SameFile(seen, now) || !seen.ModTime().Equal(now.ModTime()) || seen.Size() != now.Size()
}
