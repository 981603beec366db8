package checkpoint

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sluice-dev/sluice/internal/security/fsguard"
	"github.com/sluice-dev/sluice/internal/security/sealed"
)

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// snapshotFiles implements SnapshotFiles on a StateDir tree: the job
// directory for a checkpoint, the savepoint's directory for a savepoint.
type snapshotFiles struct {
	tree  *fsguard.Tree
	jobID string
	key   *sealed.Key
	info  Info
}

// NewSnapshotFiles returns where a subtask writes the files of snapshot
// info of job jobID. tree is the TaskManager's StateDir tree on the job's
// checkpoint directory (a checkpoint: files go to chk-<id>/ and shared/),
// or on the savepoint's directory (a savepoint: plain names, no shared
// files). key seals every file; nil hashes them instead.
func NewSnapshotFiles(tree *fsguard.Tree, jobID string, key *sealed.Key, info Info) (SnapshotFiles, error) {
	if err := CheckJobID(jobID); err != nil {
		return nil, err
	}
	if info.ID <= 0 {
		return nil, fmt.Errorf("snapshot files: checkpoint id %d: want > 0", info.ID)
	}
	return &snapshotFiles{tree: tree, jobID: jobID, key: key, info: info}, nil
}

func (s *snapshotFiles) SharedAllowed() bool { return !s.info.IsSavepoint() }

func (s *snapshotFiles) Create(name string) (FileWriter, error) {
	if err := CheckRelPath(name); err != nil {
		return nil, fmt.Errorf("create snapshot file: %w", err)
	}
	rel := name
	if !s.info.IsSavepoint() {
		rel = CheckpointFile(s.info.ID, name)
	}
	if err := CheckSnapshotPath(rel, s.info.ID, s.info.IsSavepoint()); err != nil {
		return nil, fmt.Errorf("create snapshot file: %w", err)
	}
	return s.create(rel, 0)
}

func (s *snapshotFiles) CreateShared(name string) (FileWriter, error) {
	if !s.SharedAllowed() {
		return nil, fmt.Errorf("create shared file %s: a savepoint is self-contained and has no shared files", name)
	}
	if err := CheckRelPath(name); err != nil {
		return nil, fmt.Errorf("create shared file: %w", err)
	}
	return s.create(SharedFile(name), s.info.ID)
}

func (s *snapshotFiles) create(rel string, sealedFor int64) (FileWriter, error) {
	f, err := s.tree.Create(rel)
	if err != nil {
		return nil, &sealed.FileError{Path: rel, Err: err}
	}
	w := &fileWriter{tree: s.tree, f: f, rel: rel, sealedFor: sealedFor}
	w.buf = bufio.NewWriterSize(f, sealed.ChunkSize)
	if s.key != nil {
		sw, err := sealed.NewWriter(w.buf, s.key, sealed.Binding{JobID: s.jobID, CheckpointID: s.info.ID, Path: rel})
		if err != nil {
			w.Abort()
			return nil, err
		}
		w.sealer, w.out = sw, sw
	} else {
		w.hasher = sealed.NewHashWriter(w.buf)
		w.out = w.hasher
	}
	return w, nil
}

// fileWriter is one snapshot file being written: content -> sealer or
// hasher -> buffer -> file.
type fileWriter struct {
	tree      *fsguard.Tree
	f         *os.File
	rel       string
	sealedFor int64
	buf       *bufio.Writer
	out       io.Writer
	sealer    *sealed.Writer
	hasher    *sealed.HashWriter
	done      bool
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("checkpoint file %s: write after Commit or Abort", w.rel)
	}
	n, err := w.out.Write(p)
	if err != nil {
		return n, &sealed.FileError{Path: w.rel, Err: err}
	}
	return n, nil
}

func (w *fileWriter) Commit() (FileRef, error) {
	if w.done {
		return FileRef{}, fmt.Errorf("checkpoint file %s: Commit after Commit or Abort", w.rel)
	}
	ref := FileRef{Path: w.rel, SealedFor: w.sealedFor}
	var err error
	if w.sealer != nil {
		err = w.sealer.Close()
		ref.Size = w.sealer.Size()
	} else {
		ref.Size, ref.SHA256 = w.hasher.Size(), w.hasher.Sum()
	}
	if err == nil {
		err = w.buf.Flush()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		w.Abort()
		return FileRef{}, &sealed.FileError{Path: w.rel, Err: err}
	}
	w.done = true
	if err := w.f.Close(); err != nil {
		w.tree.RemoveAll(w.rel)
		return FileRef{}, &sealed.FileError{Path: w.rel, Err: err}
	}
	return ref, nil
}

func (w *fileWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	w.tree.RemoveAll(w.rel)
}

// restoreFiles implements RestoreFiles on a ReadTree (or StateDir) tree
// rooted at the snapshot's root.
type restoreFiles struct {
	tree  *fsguard.Tree
	key   *sealed.Key
	m     *Metadata
	files map[string]FileRef
}

// NewRestoreFiles returns the verified view of the files of m (already
// loaded and verified: LoadMetadata) in tree, the snapshot's root. Only
// files m references open, and only as m records them; a sealed snapshot
// needs key (the one it was sealed with), and an unsealed one is refused
// when a key is set, as LoadMetadata refuses its _metadata.
func NewRestoreFiles(tree *fsguard.Tree, key *sealed.Key, m *Metadata) (RestoreFiles, error) {
	switch {
	case m.Sealing == SealingAESGCM && key == nil:
		return nil, fmt.Errorf("%s %d is sealed with key %s, and %s is not set on this process", strings.ToLower(m.Type), m.CheckpointID, m.KeyID, sealed.KeyFileKey)
	case m.Sealing == SealingAESGCM && m.KeyID != key.ID():
		return nil, fmt.Errorf("%s %d is sealed with key %s, but %s holds key %s: configure the same key on every process", strings.ToLower(m.Type), m.CheckpointID, m.KeyID, sealed.KeyFileKey, key.ID())
	case m.Sealing != SealingAESGCM && key != nil:
		return nil, fmt.Errorf("%s %d is not sealed, but %s is set: with a key every snapshot is sealed", strings.ToLower(m.Type), m.CheckpointID, sealed.KeyFileKey)
	}
	files := map[string]FileRef{}
	for _, f := range m.Files() {
		files[f.Path] = f
	}
	return &restoreFiles{tree: tree, key: key, m: m, files: files}, nil
}

func (r *restoreFiles) CheckpointID() int64 { return r.m.CheckpointID }

func (r *restoreFiles) Open(ctx context.Context, ref FileRef) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := CheckSnapshotPath(ref.Path, r.m.CheckpointID, r.m.IsSavepoint()); err != nil {
		return nil, &sealed.FileError{Path: ref.Path, Err: err}
	}
	if want, ok := r.files[ref.Path]; !ok || want != ref {
		return nil, &sealed.FileError{Path: ref.Path, Err: fmt.Errorf("not a file of %s %d as its %s records it", strings.ToLower(r.m.Type), r.m.CheckpointID, MetadataName)}
	}
	f, err := r.tree.Open(ref.Path)
	if err != nil {
		return nil, &sealed.FileError{Path: ref.Path, Err: err}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &sealed.FileError{Path: ref.Path, Err: err}
	}
	if r.key == nil {
		hr, err := sealed.NewHashReader(f, ref.Path, ref.Size, ref.SHA256)
		if err != nil {
			f.Close()
			return nil, err
		}
		return &hashedFile{HashReader: hr, f: f}, nil
	}
	if st.Size() != ref.Size {
		f.Close()
		return nil, &sealed.FileError{Path: ref.Path, Err: fmt.Errorf("%w: %d bytes, the checkpoint recorded %d: the file was truncated or replaced", sealed.ErrAuth, st.Size(), ref.Size)}
	}
	sr, err := sealed.Open(f, st.Size(), r.key, sealed.Binding{JobID: r.m.JobID, CheckpointID: ref.BindingID(r.m.CheckpointID), Path: ref.Path})
	if err != nil {
		f.Close()
		return nil, err
	}
	return &sealedFile{Reader: sr, f: f}, nil
}

// OpenRestore is the TaskManager's side of a restore: it reads the
// _metadata at rel in tree (the snapshot's root, a ReadTree grant),
// verifies it, refuses it unless its SHA-256 is wantSHA256 (what the
// JobManager validated: RestoreSettings.metadata_sha256), and returns it
// with the verified view of its files.
func OpenRestore(tree *fsguard.Tree, rel string, key *sealed.Key, wantSHA256 string) (*Metadata, RestoreFiles, error) {
	m, sum, err := LoadMetadata(tree, rel, key)
	if err != nil {
		return nil, nil, err
	}
	if sum != wantSHA256 {
		return nil, nil, &sealed.FileError{Path: rel, Err: fmt.Errorf("SHA-256 %s, but the JobManager validated %s: the file was replaced since", sum, wantSHA256)}
	}
	rf, err := NewRestoreFiles(tree, key, m)
	if err != nil {
		return nil, nil, err
	}
	return m, rf, nil
}

// hashedFile is an unsealed file: read whole, checked at its end.
type hashedFile struct {
	*sealed.HashReader
	f *os.File
}

func (h *hashedFile) Close() error { return h.f.Close() }

// sealedFile is a sealed file: authenticated chunk by chunk, seekable.
type sealedFile struct {
	*sealed.Reader
	f *os.File
}

func (s *sealedFile) Close() error { return s.f.Close() }

// ErrFile reports the path of the checkpoint file an error is about, if
// any (a RestoreFailure names it).
func ErrFile(err error) (string, bool) {
	var fe *sealed.FileError
	if errors.As(err, &fe) {
		return fe.Path, true
	}
	return "", false
}

var (
	_ SnapshotFiles = (*snapshotFiles)(nil)
	_ FileWriter    = (*fileWriter)(nil)
	_ RestoreFiles  = (*restoreFiles)(nil)
	_ io.ReadSeeker = (*sealedFile)(nil)
)
