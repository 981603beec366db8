package statetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"

	"github.com/sluice-dev/sluice/internal/checkpoint"
)

// Dir is checkpoint.SnapshotFiles and checkpoint.RestoreFiles over a
// directory laid out as a job's checkpoint directory (chk-<id>/…,
// shared/…), for tests: files are written in the clear with their SHA-256,
// and Open checks size and hash. The real implementation (sealing,
// fsguard trees) is internal/checkpoint's.
type Dir struct {
	Root string
	ID   int64
	// Savepoint makes SharedAllowed false (a savepoint is self-contained).
	Savepoint bool

	written atomic.Int64
	files   atomic.Int64
}

var (
	_ checkpoint.SnapshotFiles = (*Dir)(nil)
	_ checkpoint.RestoreFiles  = (*Dir)(nil)
)

// Written is the number of bytes of the files committed through d.
func (d *Dir) Written() int64 { return d.written.Load() }

// Files is the number of files committed through d.
func (d *Dir) Files() int64 { return d.files.Load() }

// Create creates chk-<id>/name.
func (d *Dir) Create(name string) (checkpoint.FileWriter, error) {
	return d.create(checkpoint.CheckpointFile(d.ID, name), 0)
}

// SharedAllowed reports whether d is a checkpoint's.
func (d *Dir) SharedAllowed() bool { return !d.Savepoint }

// CreateShared creates shared/name, sealed for d.ID.
func (d *Dir) CreateShared(name string) (checkpoint.FileWriter, error) {
	if d.Savepoint {
		return nil, fmt.Errorf("create shared file %s: a savepoint has no shared files", name)
	}
	return d.create(checkpoint.SharedFile(name), d.ID)
}

func (d *Dir) create(rel string, sealedFor int64) (checkpoint.FileWriter, error) {
	if err := checkpoint.CheckRelPath(rel); err != nil {
		return nil, err
	}
	p := filepath.Join(d.Root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &fileWriter{d: d, f: f, h: sha256.New(), ref: checkpoint.FileRef{Path: rel, SealedFor: sealedFor}}, nil
}

type fileWriter struct {
	d    *Dir
	f    *os.File
	h    hash.Hash
	ref  checkpoint.FileRef
	done bool
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.ref.Size += int64(n)
	return n, err
}

func (w *fileWriter) Commit() (checkpoint.FileRef, error) {
	if w.done {
		return checkpoint.FileRef{}, fmt.Errorf("%s: committed or aborted", w.ref.Path)
	}
	w.done = true
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		return checkpoint.FileRef{}, err
	}
	if err := w.f.Close(); err != nil {
		return checkpoint.FileRef{}, err
	}
	w.ref.SHA256 = hex.EncodeToString(w.h.Sum(nil))
	w.d.written.Add(w.ref.Size)
	w.d.files.Add(1)
	return w.ref, nil
}

func (w *fileWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
}

// CheckpointID is d.ID.
func (d *Dir) CheckpointID() int64 { return d.ID }

// Open reads ref whole, checks its size and SHA-256, and returns it.
func (d *Dir) Open(_ context.Context, ref checkpoint.FileRef) (io.ReadCloser, error) {
	if err := checkpoint.CheckRelPath(ref.Path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(d.Root, filepath.FromSlash(path.Clean(ref.Path))))
	if err != nil {
		return nil, fmt.Errorf("checkpoint file %s: %w", ref.Path, err)
	}
	sum := sha256.Sum256(b)
	if int64(len(b)) != ref.Size || hex.EncodeToString(sum[:]) != ref.SHA256 {
		return nil, fmt.Errorf("checkpoint file %s: size or SHA-256 differs from _metadata: the file was altered", ref.Path)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
