// Package blob stores job artifacts (specs and attached files) by the SHA-256
// of their content (connection 4 in DESIGN.md). The JobManager keeps the
// store and serves it; TaskManagers fetch into a local cache and verify the
// hash of everything they receive, so a corrupted or substituted artifact is
// refused rather than run.
package blob

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// ErrNotFound is returned for a key the store does not hold.
var ErrNotFound = errors.New("blob not found")

var keyPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidKey reports whether k is a well-formed key (lowercase hex SHA-256).
func ValidKey(k string) bool { return keyPattern.MatchString(k) }

// Key returns the key of data.
func Key(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Store is a directory of blobs named by their key.
type Store struct{ dir string }

// NewStore opens (creating) a store in dir.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create blob directory %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Put stores data and returns its key.
func (s *Store) Put(data []byte) (string, error) {
	k := Key(data)
	p := filepath.Join(s.dir, k)
	if _, err := os.Stat(p); err == nil {
		return k, nil
	}
	tmp, err := os.CreateTemp(s.dir, ".incoming-*")
	if err != nil {
		return "", fmt.Errorf("store blob: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", fmt.Errorf("store blob: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("store blob: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("store blob: %w", err)
	}
	return k, nil
}

// Open opens the blob with key k.
func (s *Store) Open(k string) (*os.File, error) {
	if !ValidKey(k) {
		return nil, fmt.Errorf("blob key %q: want 64 lowercase hex digits (SHA-256)", k)
	}
	f, err := os.Open(filepath.Join(s.dir, k))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", k, ErrNotFound)
	}
	return f, err
}

// Path returns the local path of the blob with key k if present.
func (s *Store) Path(k string) (string, bool) {
	if !ValidKey(k) {
		return "", false
	}
	p := filepath.Join(s.dir, k)
	_, err := os.Stat(p)
	return p, err == nil
}

// Get reads a whole blob.
func (s *Store) Get(k string) ([]byte, error) {
	f, err := s.Open(k)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Keys returns the keys of every blob in the store (files being written
// are not blobs yet and are left out).
func (s *Store) Keys() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list blob directory %s: %w", s.dir, err)
	}
	var keys []string
	for _, e := range entries {
		if e.Type().IsRegular() && ValidKey(e.Name()) {
			keys = append(keys, e.Name())
		}
	}
	return keys, nil
}

// Delete removes the blob with key k; a blob that is not there is no error.
func (s *Store) Delete(k string) error {
	if !ValidKey(k) {
		return fmt.Errorf("blob key %q: want 64 lowercase hex digits (SHA-256)", k)
	}
	if err := os.Remove(filepath.Join(s.dir, k)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", k, err)
	}
	return nil
}
