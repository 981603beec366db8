// Package dataflowtest drives operators and chains of a plan as the TaskManager would, for
// tests: a controllable input gate, recorded outputs, an in-memory snapshot store and a
// small checkpoint coordinator that turns acknowledgements into checkpoint.Metadata and
// restores subtasks from it at any parallelism (docs/architecture.md §1).
package dataflowtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"github.com/sluice-dev/sluice/internal/checkpoint"
)

// Store keeps snapshot files in memory, by path relative to the job's checkpoint root
// (chk-N/<name>), hashed as an unsealed checkpoint store would.
type Store struct {
	mu    sync.Mutex
	files map[string][]byte
	// FailCreate, when set, makes Create fail for names it returns true for.
	FailCreate func(name string) bool
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{files: map[string][]byte{}} }

// Files implements TaskCheckpointing.Files: the files of snapshot cp.
func (s *Store) Files(cp checkpoint.Info) (checkpoint.SnapshotFiles, error) {
	return &snapshotFiles{s: s, id: cp.ID}, nil
}

// Paths lists the stored paths.
func (s *Store) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.files))
	for p := range s.files {
		out = append(out, p)
	}
	return out
}

// Corrupt flips a byte of the file at path.
func (s *Store) Corrupt(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.files[path]; len(b) > 0 {
		b[len(b)/2] ^= 0xff
	}
}

type snapshotFiles struct {
	s  *Store
	id int64
}

func (f *snapshotFiles) Create(name string) (checkpoint.FileWriter, error) {
	if err := checkpoint.CheckRelPath(name); err != nil {
		return nil, err
	}
	if f.s.FailCreate != nil && f.s.FailCreate(name) {
		return nil, fmt.Errorf("create %s: injected failure", name)
	}
	path := checkpoint.CheckpointFile(f.id, name)
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	if _, dup := f.s.files[path]; dup {
		return nil, fmt.Errorf("create %s: exists", path)
	}
	f.s.files[path] = nil
	return &fileWriter{s: f.s, path: path}, nil
}

func (f *snapshotFiles) SharedAllowed() bool { return false }

func (f *snapshotFiles) CreateShared(name string) (checkpoint.FileWriter, error) {
	return nil, fmt.Errorf("create shared %s: this store keeps no shared files", name)
}

type fileWriter struct {
	s    *Store
	path string
	buf  bytes.Buffer
	done bool
}

func (w *fileWriter) Write(b []byte) (int, error) { return w.buf.Write(b) }

func (w *fileWriter) Commit() (checkpoint.FileRef, error) {
	if w.done {
		return checkpoint.FileRef{}, fmt.Errorf("commit %s twice", w.path)
	}
	w.done = true
	b := w.buf.Bytes()
	sum := sha256.Sum256(b)
	w.s.mu.Lock()
	w.s.files[w.path] = b
	w.s.mu.Unlock()
	return checkpoint.FileRef{Path: w.path, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}, nil
}

func (w *fileWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.s.mu.Lock()
	delete(w.s.files, w.path)
	w.s.mu.Unlock()
}

// RestoreFiles opens the files of checkpoint id, checking each against its SHA-256 before
// handing it out.
func (s *Store) RestoreFiles(id int64) checkpoint.RestoreFiles { return &restoreFiles{s: s, id: id} }

type restoreFiles struct {
	s  *Store
	id int64
}

func (r *restoreFiles) CheckpointID() int64 { return r.id }

func (r *restoreFiles) Open(_ context.Context, ref checkpoint.FileRef) (io.ReadCloser, error) {
	r.s.mu.Lock()
	b, ok := r.s.files[ref.Path]
	r.s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("restore file %s: not in the store", ref.Path)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != ref.SHA256 {
		return nil, fmt.Errorf("restore file %s: SHA-256 mismatch", ref.Path)
	}
	return readSeekCloser{bytes.NewReader(b)}, nil
}

// readSeekCloser is seekable, so a keyed restore reads only its key groups.
type readSeekCloser struct{ *bytes.Reader }

func (readSeekCloser) Close() error { return nil }
