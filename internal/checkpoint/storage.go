package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/internal/security/fsguard"
	"github.com/sluice-dev/sluice/internal/security/sealed"
)

// CompletedCheckpoint is a completed checkpoint or savepoint as recovery
// and restore need it: where it is and what its _metadata holds.
type CompletedCheckpoint struct {
	ID int64
	// Root is the directory the paths of _metadata are relative to (the
	// job directory of a checkpoint, the savepoint's directory) and
	// Metadata the path of _metadata; both absolute, as RestoreSettings
	// carries them.
	Root, Metadata string
	// MetadataSHA256 is the hex SHA-256 of the _metadata file as written
	// or validated, so a TaskManager refuses one swapped since.
	MetadataSHA256 string
	Savepoint      bool
	Meta           *Metadata
}

// ExternalPath is the checkpoint's directory as a file: URI (statistics,
// a savepoint operation's location).
func (c *CompletedCheckpoint) ExternalPath() string {
	return "file:" + filepath.Dir(c.Metadata)
}

// JobStorage is the JobManager's view of one job's checkpoint directory,
// <state.checkpoints.dir>/<job-id>, opened as a private fsguard tree (0700
// directories, 0600 files, no link followed). It creates chk-N
// directories, writes and reads _metadata (sealed with the cluster key, or
// with a trailing SHA-256 line without one) and deletes what retention
// drops. Not safe for concurrent use: the coordinator's goroutine owns it.
type JobStorage struct {
	root  string // state.checkpoints.dir
	dir   string // root/<job-id>
	jobID string
	key   *sealed.Key
	tree  *fsguard.Tree
}

// OpenJobStorage opens (creating it 0700, and root if missing) the job's
// directory <root>/<jobID>; root is state.checkpoints.dir, an absolute
// path or a file: URI. An existing directory that group or others
// may access is refused: it would expose the job's state or let others
// plant files in it. key is the cluster's sealing key, or nil.
func OpenJobStorage(root, jobID string, key *sealed.Key) (*JobStorage, error) {
	local, err := LocalPath(root)
	if err != nil {
		return nil, fmt.Errorf("state.checkpoints.dir %w", err)
	}
	root = local
	dir, err := JobDir(root, jobID)
	if err != nil {
		return nil, err
	}
	g, err := fsguard.New([]fsguard.Grant{{Path: dir, Mode: fsguard.StateDir}})
	if err != nil {
		return nil, fmt.Errorf("state.checkpoints.dir %s: %w", root, err)
	}
	tree, err := g.OpenTree(dir, fsguard.StateDir)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("state.checkpoints.dir %s: cannot create the job's directory: %w: the JobManager and every TaskManager must be able to write there", root, err)
		}
		return nil, fmt.Errorf("state.checkpoints.dir %s: job directory %s: %w", root, dir, err)
	}
	return &JobStorage{root: filepath.Clean(root), dir: dir, jobID: jobID, key: key, tree: tree}, nil
}

// Dir is the job's directory, absolute.
func (s *JobStorage) Dir() string { return s.dir }

// JobID is the job the directory belongs to.
func (s *JobStorage) JobID() string { return s.jobID }

// Key is the sealing key, nil without one.
func (s *JobStorage) Key() *sealed.Key { return s.key }

// Sealing is _metadata's "sealing" for this storage.
func (s *JobStorage) Sealing() string { return sealingOf(s.key) }

// KeyID is _metadata's "key-id": the key's id, or "" without a key.
func (s *JobStorage) KeyID() string { return keyIDOf(s.key) }

func sealingOf(k *sealed.Key) string {
	if k != nil {
		return SealingAESGCM
	}
	return SealingSHA256
}

func keyIDOf(k *sealed.Key) string {
	if k != nil {
		return k.ID()
	}
	return ""
}

// CreateCheckpoint creates checkpoint id's directory chk-<id> (0700). An
// existing one (a crashed JobManager's leftover) is emptied first, since
// ids never repeat within a job and its content cannot be trusted.
func (s *JobStorage) CreateCheckpoint(id int64) error {
	if id <= 0 {
		return fmt.Errorf("create checkpoint directory: id %d: want > 0", id)
	}
	if err := s.tree.RemoveAll(CheckpointDir(id)); err != nil {
		return fmt.Errorf("checkpoint %d: %w", id, err)
	}
	if err := s.tree.MkdirAll(CheckpointDir(id)); err != nil {
		return fmt.Errorf("checkpoint %d: %w", id, err)
	}
	return nil
}

// WriteMetadata writes m (a checkpoint of this job) as chk-<id>/_metadata:
// to a temporary name, fsynced, renamed, and the directory fsynced, so a
// crash leaves either no _metadata or a whole one.
func (s *JobStorage) WriteMetadata(m *Metadata) (*CompletedCheckpoint, error) {
	if m.JobID != s.jobID || m.Type != TypeCheckpoint {
		return nil, fmt.Errorf("write %s: %s %d of job %s is not a checkpoint of job %s", MetadataName, m.Type, m.CheckpointID, m.JobID, s.jobID)
	}
	rel := CheckpointFile(m.CheckpointID, MetadataName)
	sum, err := writeMetadata(s.tree, rel, CheckpointDir(m.CheckpointID), s.key, m)
	if err != nil {
		return nil, err
	}
	return &CompletedCheckpoint{
		ID: m.CheckpointID, Root: s.dir, Metadata: filepath.Join(s.dir, CheckpointDir(m.CheckpointID), MetadataName),
		MetadataSHA256: sum, Meta: m,
	}, nil
}

// ReadMetadata reads and verifies checkpoint id's _metadata: sealed for
// (this job, id, chk-<id>/_metadata), or its digest line checked; its
// content must be checkpoint id of this job.
func (s *JobStorage) ReadMetadata(id int64) (*CompletedCheckpoint, error) {
	rel := CheckpointFile(id, MetadataName)
	m, sum, err := loadMetadata(s.tree, rel, s.key, &sealed.Binding{JobID: s.jobID, CheckpointID: id, Path: rel})
	if err != nil {
		return nil, err
	}
	if m.JobID != s.jobID || m.CheckpointID != id || m.IsSavepoint() {
		return nil, fmt.Errorf("checkpoint file %s: holds %s %d of job %s, not checkpoint %d of job %s", rel, m.Type, m.CheckpointID, m.JobID, id, s.jobID)
	}
	return &CompletedCheckpoint{ID: id, Root: s.dir, Metadata: filepath.Join(s.dir, rel), MetadataSHA256: sum, Meta: m}, nil
}

// DeleteCheckpoint removes chk-<id> and everything in it (a missing one
// is not an error). Shared files are not touched: see DeleteUnreferenced.
func (s *JobStorage) DeleteCheckpoint(id int64) error {
	if err := s.tree.RemoveAll(CheckpointDir(id)); err != nil {
		return fmt.Errorf("delete checkpoint %d: %w", id, err)
	}
	return nil
}

// DeleteUnreferenced removes the files of shared/ that none of retained
// references, and returns their names. It must run while no checkpoint is
// pending: a pending checkpoint's new shared files are referenced by no
// _metadata yet. (A backend reuses only shared files of checkpoints it
// was notified complete, which are retained or were subsumed.)
func (s *JobStorage) DeleteUnreferenced(retained []*Metadata) ([]string, error) {
	used := map[string]bool{}   // referenced files
	parent := map[string]bool{} // directories holding referenced files
	for _, m := range retained {
		if m == nil || m.JobID != s.jobID {
			continue
		}
		for _, f := range m.Files() {
			if !strings.HasPrefix(f.Path, SharedDir+"/") {
				continue
			}
			used[f.Path] = true
			for d := path.Dir(f.Path); d != SharedDir && d != "."; d = path.Dir(d) {
				parent[d] = true
			}
		}
	}
	var removed []string
	var errs []error
	var sweep func(dir string)
	sweep = func(dir string) {
		names, err := s.tree.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("list shared files: %w", err))
			return
		}
		for _, n := range names {
			rel := dir + "/" + n
			switch {
			case used[rel]:
			case parent[rel]:
				sweep(rel)
			default:
				if err := s.tree.RemoveAll(rel); err != nil {
					errs = append(errs, err)
					continue
				}
				removed = append(removed, rel)
			}
		}
	}
	sweep(SharedDir)
	return removed, errors.Join(errs...)
}

// Checkpoints lists the ids of the chk-<id> directories, ascending
// (recovery of a job's directory, and tests).
func (s *JobStorage) Checkpoints() ([]int64, error) {
	names, err := s.tree.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var ids []int64
	for _, n := range names {
		if id, ok := ParseCheckpointDir(n); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// RemoveAll removes the job's directory and everything in it (retention
// of a finished job, or of a canceled one with DELETE_ON_CANCELLATION),
// and closes the storage.
func (s *JobStorage) RemoveAll() error {
	if err := removeTree(s.tree, s.dir); err != nil {
		return fmt.Errorf("delete job directory %s: %w", s.dir, err)
	}
	return nil
}

// removeTree deletes everything in tree, closes it and removes its root dir. The root goes
// by path (a tree cannot remove its own root); a link swapped in since is removed, not
// followed.
func removeTree(tree *fsguard.Tree, dir string) error {
	names, err := tree.ReadDir(".")
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, n := range names {
		if err := tree.RemoveAll(n); err != nil {
			errs = append(errs, err)
		}
	}
	tree.Close()
	if len(errs) == 0 {
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close releases the directory's descriptor.
func (s *JobStorage) Close() error { return s.tree.Close() }

// Files lists every file m references.
func (m *Metadata) Files() []FileRef {
	var out []FileRef
	for _, o := range m.Operators {
		for _, st := range o.Subtasks {
			if st.Keyed != nil {
				out = append(out, st.Keyed.Files...)
			}
			if st.Operator != nil {
				out = append(out, st.Operator.File)
			}
		}
	}
	return out
}

// SavepointStorage is a savepoint's directory being written by the
// JobManager: savepoint-<job id[:6]>-<12 hex> inside the target
// directory, created 0700.
type SavepointStorage struct {
	dir   string
	jobID string
	key   *sealed.Key
	tree  *fsguard.Tree
}

// CreateSavepoint creates a new savepoint directory for jobID inside
// target (an absolute directory, created 0700 if missing).
func CreateSavepoint(target, jobID string, key *sealed.Key) (*SavepointStorage, error) {
	if !filepath.IsAbs(target) {
		return nil, fmt.Errorf("savepoint target directory %q is not an absolute path: give /path or file:///path", target)
	}
	target = filepath.Clean(target)
	for range 3 {
		name, err := SavepointDir(jobID)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(target, name)
		g, err := fsguard.New([]fsguard.Grant{{Path: dir, Mode: fsguard.StateDir}})
		if err != nil {
			return nil, fmt.Errorf("savepoint target directory %s: %w", target, err)
		}
		tree, err := g.OpenTree(dir, fsguard.StateDir)
		if err != nil {
			return nil, fmt.Errorf("savepoint target directory %s: %w", target, err)
		}
		// OpenTree accepts an existing private directory; a savepoint
		// needs a new one (48 random bits: a collision is an accident).
		if names, err := tree.ReadDir("."); err != nil || len(names) > 0 {
			tree.Close()
			if err != nil {
				return nil, fmt.Errorf("savepoint directory %s: %w", dir, err)
			}
			continue
		}
		return &SavepointStorage{dir: dir, jobID: jobID, key: key, tree: tree}, nil
	}
	return nil, fmt.Errorf("savepoint target directory %s: could not create a new savepoint directory", target)
}

// Dir is the savepoint's directory, absolute: what the TaskManagers get a
// StateDir grant on.
func (s *SavepointStorage) Dir() string { return s.dir }

// WriteMetadata writes m, a savepoint of the storage's job, as the
// directory's _metadata (temporary name, fsync, rename, fsync).
func (s *SavepointStorage) WriteMetadata(m *Metadata) (*CompletedCheckpoint, error) {
	if m.JobID != s.jobID || !m.IsSavepoint() {
		return nil, fmt.Errorf("write %s: %s %d of job %s is not a savepoint of job %s", MetadataName, m.Type, m.CheckpointID, m.JobID, s.jobID)
	}
	sum, err := writeMetadata(s.tree, MetadataName, ".", s.key, m)
	if err != nil {
		return nil, err
	}
	return &CompletedCheckpoint{
		ID: m.CheckpointID, Root: s.dir, Metadata: filepath.Join(s.dir, MetadataName),
		MetadataSHA256: sum, Savepoint: true, Meta: m,
	}, nil
}

// Remove deletes the savepoint directory (a savepoint that failed) and
// closes the storage.
func (s *SavepointStorage) Remove() error {
	if err := removeTree(s.tree, s.dir); err != nil {
		return fmt.Errorf("delete savepoint directory %s: %w", s.dir, err)
	}
	return nil
}

// Close releases the directory's descriptor.
func (s *SavepointStorage) Close() error { return s.tree.Close() }

// writeMetadata writes m as rel in tree (dir is rel's directory, to fsync)
// and returns the hex SHA-256 of the file written.
func writeMetadata(tree *fsguard.Tree, rel, dir string, key *sealed.Key, m *Metadata) (string, error) {
	if m.Sealing != sealingOf(key) || m.KeyID != keyIDOf(key) {
		return "", fmt.Errorf("write %s: sealing %q with key %q, but the storage has sealing %q with key %q", rel, m.Sealing, m.KeyID, sealingOf(key), keyIDOf(key))
	}
	body, err := Marshal(m)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if key != nil {
		w, err := sealed.NewWriter(&out, key, sealed.Binding{JobID: m.JobID, CheckpointID: m.CheckpointID, Path: rel})
		if err != nil {
			return "", err
		}
		if _, err := w.Write(body); err != nil {
			return "", err
		}
		if err := w.Close(); err != nil {
			return "", err
		}
	} else {
		out.Write(sealed.AppendDigestLine(body))
	}
	tmpName, err := randomHex(6)
	if err != nil {
		return "", err
	}
	tmp := rel + ".tmp-" + tmpName
	f, err := tree.Create(tmp)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", rel, err)
	}
	_, err = f.Write(out.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = tree.Rename(tmp, rel)
	}
	if err == nil {
		err = tree.Sync(dir)
	}
	if err != nil {
		tree.RemoveAll(tmp)
		return "", fmt.Errorf("write %s in %s: %w", rel, tree.Path(), err)
	}
	sum := sha256.Sum256(out.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// sealedMagic starts every sealed file.
var sealedMagic = []byte("SLSEAL\x00")

// loadMetadata reads rel from tree and verifies it. With want, a sealed
// file must be bound to it; without (a savepoint's _metadata, or a
// checkpoint named by the user), the header's binding is taken and the
// content must name the same job and checkpoint. A sealed file without a
// key, or an unsealed one with a key, is refused: a key means every
// snapshot is sealed, so an unsealed _metadata is not the cluster's.
func loadMetadata(tree *fsguard.Tree, rel string, key *sealed.Key, want *sealed.Binding) (*Metadata, string, error) {
	f, err := tree.Open(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("%s: no %s there: %w", filepath.Join(tree.Path(), rel), MetadataName, err)
		}
		return nil, "", &sealed.FileError{Path: rel, Err: err}
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, 2*MaxMetadataSize+1))
	if err != nil {
		return nil, "", &sealed.FileError{Path: rel, Err: err}
	}
	if len(raw) > 2*MaxMetadataSize {
		return nil, "", &sealed.FileError{Path: rel, Err: fmt.Errorf("more than %d bytes: not a sluice %s", 2*MaxMetadataSize, MetadataName)}
	}
	sum := sha256.Sum256(raw)
	isSealed := bytes.HasPrefix(raw, sealedMagic)
	var body []byte
	switch {
	case isSealed && key == nil:
		return nil, "", &sealed.FileError{Path: rel, Err: fmt.Errorf("the snapshot is sealed (encrypted), and %s is not set on this process: set it to the key the snapshot was written with", sealed.KeyFileKey)}
	case !isSealed && key != nil:
		return nil, "", &sealed.FileError{Path: rel, Err: fmt.Errorf("the snapshot is not sealed, but %s is set: with a key every snapshot is sealed, so this one was not written by this cluster or was replaced; a cluster with a key restores only sealed snapshots, since an unsealed one could have been written by anyone able to write its directory: restore it on a cluster without the key", sealed.KeyFileKey)}
	case isSealed:
		var r *sealed.Reader
		if want != nil {
			r, err = sealed.Open(bytes.NewReader(raw), int64(len(raw)), key, *want)
		} else {
			r, err = sealed.OpenUnbound(bytes.NewReader(raw), int64(len(raw)), key, rel)
		}
		if err != nil {
			return nil, "", err
		}
		if body, err = io.ReadAll(r); err != nil {
			return nil, "", err
		}
		m, err := Unmarshal(body)
		if err != nil {
			return nil, "", &sealed.FileError{Path: rel, Err: err}
		}
		if b := r.Binding(); m.JobID != b.JobID || m.CheckpointID != b.CheckpointID {
			return nil, "", &sealed.FileError{Path: rel, Err: fmt.Errorf("sealed for job %s checkpoint %d but holds job %s checkpoint %d: the file was altered", b.JobID, b.CheckpointID, m.JobID, m.CheckpointID)}
		}
		if m.KeyID != key.ID() {
			return nil, "", &sealed.FileError{Path: rel, Err: fmt.Errorf("key-id %q, but the file is sealed with key %s", m.KeyID, key.ID())}
		}
		return m, hex.EncodeToString(sum[:]), nil
	default:
		if body, err = sealed.SplitDigestLine(raw, rel); err != nil {
			return nil, "", err
		}
	}
	m, err := Unmarshal(body)
	if err != nil {
		return nil, "", &sealed.FileError{Path: rel, Err: err}
	}
	if m.Sealing != SealingSHA256 {
		return nil, "", &sealed.FileError{Path: rel, Err: fmt.Errorf("sealing %q in a file that is not sealed: the file was altered", m.Sealing)}
	}
	return m, hex.EncodeToString(sum[:]), nil
}

// LoadMetadata reads and verifies the _metadata at rel in tree (a
// ReadTree or StateDir tree rooted at the snapshot's root). For a
// checkpoint (rel chk-<id>/_metadata) the content must be checkpoint id;
// for a savepoint (rel _metadata) it must be a savepoint, and a sealed
// one's content must name the job and id of its header. It returns the
// metadata and the hex SHA-256 of the file (RestoreSettings'
// metadata_sha256: a TaskManager refuses a file that differs from what
// the JobManager validated).
func LoadMetadata(tree *fsguard.Tree, rel string, key *sealed.Key) (*Metadata, string, error) {
	m, sum, err := loadMetadata(tree, rel, key, nil)
	if err != nil {
		return nil, "", err
	}
	if rel == MetadataName {
		if !m.IsSavepoint() {
			return nil, "", &sealed.FileError{Path: rel, Err: fmt.Errorf("holds checkpoint %d, but a checkpoint's %s is in its chk-%d directory: the file was moved", m.CheckpointID, MetadataName, m.CheckpointID)}
		}
		return m, sum, nil
	}
	dir, base, ok := strings.Cut(rel, "/")
	id, isChk := ParseCheckpointDir(dir)
	if !ok || base != MetadataName || !isChk {
		return nil, "", fmt.Errorf("%s: want %s or chk-<id>/%s", rel, MetadataName, MetadataName)
	}
	if m.IsSavepoint() || m.CheckpointID != id {
		return nil, "", &sealed.FileError{Path: rel, Err: fmt.Errorf("holds %s %d, not checkpoint %d: the file was moved", m.Type, m.CheckpointID, id)}
	}
	return m, sum, nil
}

// ReadCompleted opens the snapshot at root (read-only, through a ReadTree
// grant) and reads its _metadata at the absolute path metadata (as
// Resolve returns them), verified as LoadMetadata does.
func ReadCompleted(root, metadata string, key *sealed.Key) (*CompletedCheckpoint, error) {
	rel, err := filepath.Rel(root, metadata)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("%s is not inside %s", metadata, root)
	}
	rel = filepath.ToSlash(rel)
	g, err := fsguard.New([]fsguard.Grant{{Path: root, Mode: fsguard.ReadTree}})
	if err != nil {
		return nil, err
	}
	tree, err := g.OpenTree(root, fsguard.ReadTree)
	if err != nil {
		return nil, err
	}
	defer tree.Close()
	m, sum, err := LoadMetadata(tree, rel, key)
	if err != nil {
		return nil, err
	}
	return &CompletedCheckpoint{ID: m.CheckpointID, Root: root, Metadata: metadata, MetadataSHA256: sum, Savepoint: m.IsSavepoint(), Meta: m}, nil
}

// Resolve turns what a user names as a snapshot to restore — a savepoint
// directory, its _metadata, a file: URI of either, or a retained
// checkpoint's chk-<id> directory (or its _metadata) — into the
// snapshot's root and its _metadata path, both absolute and clean. It
// checks that _metadata exists; reading and verifying it is ReadCompleted's.
func Resolve(p string) (root, metadata string, err error) {
	orig := p
	if p, err = LocalPath(p); err != nil {
		return "", "", fmt.Errorf("savepoint %w", err)
	}
	dir := p
	if filepath.Base(p) == MetadataName {
		dir = filepath.Dir(p)
	}
	root = dir
	if _, ok := ParseCheckpointDir(filepath.Base(dir)); ok {
		root = filepath.Dir(dir)
	}
	metadata = filepath.Join(dir, MetadataName)
	st, err := os.Lstat(metadata)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if dst, derr := os.Stat(dir); derr != nil || !dst.IsDir() {
			return "", "", fmt.Errorf("savepoint %s: no such directory (is it the savepoint directory printed by sluice savepoint?)", orig)
		}
		return "", "", fmt.Errorf("savepoint %s: no %s there (is it the savepoint directory printed by sluice savepoint?)", orig, MetadataName)
	case err != nil:
		return "", "", fmt.Errorf("savepoint %s: %w", orig, err)
	case !st.Mode().IsRegular():
		return "", "", fmt.Errorf("savepoint %s: %s is not a regular file (links are not followed for checkpoint files)", orig, metadata)
	}
	return root, metadata, nil
}

// LocalPath turns a directory given as an absolute path, file:/path or
// file:///path into a clean absolute path. Anything else (a relative
// path, a URI with a host or another scheme) is an error naming it.
func LocalPath(p string) (string, error) {
	orig := p
	if rest, ok := strings.CutPrefix(p, "file:"); ok {
		switch {
		case strings.HasPrefix(rest, "///"):
			rest = rest[2:]
		case strings.HasPrefix(rest, "//"):
			return "", fmt.Errorf("%s: a file: URI with a host is not supported: use file:///path or /path", orig)
		}
		p = rest
	} else if i := strings.Index(p, "://"); i > 0 {
		return "", fmt.Errorf("%s: only local (shared) file systems are supported: use file:///path or /path", orig)
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s: not an absolute path: give /path or file:///path", orig)
	}
	return filepath.Clean(p), nil
}
