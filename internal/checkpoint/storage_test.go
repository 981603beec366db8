package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
	"github.com/sluice-dev/sluice/internal/security/fsguard"
	"github.com/sluice-dev/sluice/internal/security/sealed"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

func testKey(t *testing.T, fill byte) *sealed.Key {
	t.Helper()
	k, err := sealed.NewKey(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keys runs f without a key (hashed) and with one (sealed).
func keys(t *testing.T, f func(t *testing.T, key *sealed.Key)) {
	t.Run("hashed", func(t *testing.T) { f(t, nil) })
	t.Run("sealed", func(t *testing.T) { f(t, testKey(t, 7)) })
}

func openStorage(t *testing.T, root, job string, key *sealed.Key) *JobStorage {
	t.Helper()
	s, err := OpenJobStorage(root, job, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tmTree is a TaskManager's tree on dir, as its grant opens it.
func tmTree(t *testing.T, dir string, m fsguard.Mode) *fsguard.Tree {
	t.Helper()
	g, err := fsguard.New([]fsguard.Grant{{Path: dir, Mode: m}})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := g.OpenTree(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed
	}
	return b
}

func writeFile(t *testing.T, w FileWriter, err error, data []byte) FileRef {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	ref, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// snapshot is one checkpoint written as a TaskManager and the JobManager
// would: an operator list file and a pebble handle with a private and a
// shared file, then _metadata.
type snapshot struct {
	cc    *CompletedCheckpoint
	data  map[string][]byte // by path
	files []FileRef
}

func writeCheckpoint(t *testing.T, s *JobStorage, id int64, seed byte) snapshot {
	t.Helper()
	if err := s.CreateCheckpoint(id); err != nil {
		t.Fatal(err)
	}
	sf, err := NewSnapshotFiles(tmTree(t, s.Dir(), fsguard.StateDir), s.JobID(), s.Key(), Info{ID: id, Timestamp: time.Now(), Type: event.Checkpoint})
	if err != nil {
		t.Fatal(err)
	}
	data := map[string][]byte{}
	opData, privData, shData := payload(200_000, seed), payload(1000, seed+1), payload(70_000, seed+2)
	w, err := sf.Create(StateFile(0, 0, KindOperator))
	op := writeFile(t, w, err, opData)
	w, err = sf.Create(StateFile(2, 0, KindPebble) + "/MANIFEST-000005")
	priv := writeFile(t, w, err, privData)
	w, err = sf.CreateShared("9f3c21aa-" + string(rune('a'+rune(seed%26))) + ".sst")
	sh := writeFile(t, w, err, shData)
	data[op.Path], data[priv.Path], data[sh.Path] = opData, privData, shData
	if sh.SealedFor != id || !strings.HasPrefix(sh.Path, "shared/") || op.Path != CheckpointFile(id, "0-0-operator") {
		t.Fatalf("refs %+v %+v", op, sh)
	}
	if (s.Key() == nil) != (op.SHA256 != "") {
		t.Fatalf("sha256 %q with key %v", op.SHA256, s.Key())
	}
	m := &Metadata{
		Format: Format, JobID: s.JobID(), JobName: "j", CheckpointID: id, Type: TypeCheckpoint,
		Triggered: 1000, Completed: 2000, MaxParallelism: 128, Sealing: s.Sealing(), KeyID: s.KeyID(),
		Operators: []OperatorState{
			{Name: "gen", Type: "generator", Parallelism: 1, Subtasks: []SubtaskState{{Operator: &ListsHandle{File: op, Lists: []ListInfo{{Name: "splits", Mode: ModeSplit, Count: 3}}}}}},
			{Name: "sum", Type: "aggregate", Parallelism: 1, Subtasks: []SubtaskState{{Keyed: &KeyedHandle{
				Format: FormatPebble, KeyGroups: keygroup.RangeOf(0, 1, 128), States: []StateInfo{{Name: "acc", Kind: "value"}},
				Files: []FileRef{priv, sh},
			}}}},
		},
	}
	cc, err := s.WriteMetadata(m)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{cc: cc, data: data, files: []FileRef{op, priv, sh}}
}

func readAllRef(t *testing.T, rf RestoreFiles, ref FileRef) ([]byte, error) {
	t.Helper()
	r, err := rf.Open(context.Background(), ref)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func openRestore(t *testing.T, cc *CompletedCheckpoint, key *sealed.Key) RestoreFiles {
	t.Helper()
	tr := tmTree(t, cc.Root, fsguard.ReadTree)
	rel, _ := filepath.Rel(cc.Root, cc.Metadata)
	m, rf, err := OpenRestore(tr, filepath.ToSlash(rel), key, cc.MetadataSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if m.CheckpointID != cc.ID || rf.CheckpointID() != cc.ID {
		t.Fatalf("restored %d, want %d", m.CheckpointID, cc.ID)
	}
	return rf
}

func TestOpenRestoreRefusesAnotherMetadata(t *testing.T) {
	keys(t, func(t *testing.T, key *sealed.Key) {
		s := openStorage(t, t.TempDir(), testJob, key)
		a := writeCheckpoint(t, s, 17, 1)
		// Rewritten since the JobManager validated it: still valid, but not
		// the file it validated.
		m := *a.cc.Meta
		m.JobName = "other"
		if _, err := s.WriteMetadata(&m); err != nil {
			t.Fatal(err)
		}
		_, _, err := OpenRestore(tmTree(t, s.Dir(), fsguard.ReadTree), "chk-17/_metadata", key, a.cc.MetadataSHA256)
		if err == nil || !strings.Contains(err.Error(), "checkpoint file chk-17/_metadata") || !strings.Contains(err.Error(), "validated") {
			t.Fatalf("err = %v", err)
		}
	})
}

func perm(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestStorageRoundTripAndPermissions(t *testing.T) {
	keys(t, func(t *testing.T, key *sealed.Key) {
		old := syscall.Umask(0o002) // a permissive umask must not leak into the tree
		defer syscall.Umask(old)
		root := filepath.Join(t.TempDir(), "ckpt")
		s := openStorage(t, root, testJob, key)
		snap := writeCheckpoint(t, s, 17, 1)

		back, err := s.ReadMetadata(17)
		if err != nil {
			t.Fatal(err)
		}
		if back.MetadataSHA256 != snap.cc.MetadataSHA256 || back.Meta.CheckpointID != 17 || back.Metadata != filepath.Join(root, testJob, "chk-17", "_metadata") {
			t.Fatalf("read back %+v, wrote %+v", back, snap.cc)
		}
		rf := openRestore(t, snap.cc, key)
		for _, ref := range snap.files {
			got, err := readAllRef(t, rf, ref)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, snap.data[ref.Path]) {
				t.Fatalf("%s: read %d bytes differing from the %d written", ref.Path, len(got), len(snap.data[ref.Path]))
			}
		}
		if key != nil { // sealed readers seek: a rescaled restore reads part of a file
			r, err := rf.Open(context.Background(), snap.files[0])
			if err != nil {
				t.Fatal(err)
			}
			rs, ok := r.(io.ReadSeeker)
			if !ok {
				t.Fatal("sealed reader is not an io.ReadSeeker")
			}
			if _, err := rs.Seek(150_000, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			part, _ := io.ReadAll(rs)
			r.Close()
			if !bytes.Equal(part, snap.data[snap.files[0].Path][150_000:]) {
				t.Fatal("seek then read: wrong bytes")
			}
		}
		for p, want := range map[string]os.FileMode{
			root:                             0o700,
			s.Dir():                          0o700,
			filepath.Join(s.Dir(), "chk-17"): 0o700,
			filepath.Join(s.Dir(), "chk-17/2-0-pebble"):                 0o700,
			filepath.Join(s.Dir(), "shared"):                            0o700,
			filepath.Join(s.Dir(), "chk-17/_metadata"):                  0o600,
			filepath.Join(s.Dir(), "chk-17/0-0-operator"):               0o600,
			filepath.Join(s.Dir(), "chk-17/2-0-pebble/MANIFEST-000005"): 0o600,
			filepath.Join(s.Dir(), snap.files[2].Path):                  0o600,
		} {
			if got := perm(t, p); got != want {
				t.Errorf("%s: mode %04o, want %04o", p, got, want)
			}
		}
		names, _ := os.ReadDir(filepath.Join(s.Dir(), "chk-17"))
		for _, n := range names {
			if strings.Contains(n.Name(), ".tmp-") {
				t.Errorf("temporary file %s left behind", n.Name())
			}
		}
		raw, _ := os.ReadFile(snap.cc.Metadata)
		if key == nil && !bytes.Contains(raw, []byte("\nsha-256 ")) {
			t.Error("unsealed _metadata without its digest line")
		}
		if key != nil && bytes.Contains(raw, []byte(testJob+`"`)) {
			t.Error("sealed _metadata holds clear JSON")
		}
	})
}

func TestOpenJobStorageRefusesOpenDirectory(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, testJob)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	_, err := OpenJobStorage(root, testJob, nil)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "chmod 700") || !strings.Contains(err.Error(), "state.checkpoints.dir") {
		t.Fatalf("err = %v, want the directory, state.checkpoints.dir and chmod 700 named", err)
	}
	if _, err := OpenJobStorage("relative/dir", testJob, nil); err == nil || !strings.Contains(err.Error(), "state.checkpoints.dir") {
		t.Fatalf("relative root: err = %v", err)
	}
	if _, err := OpenJobStorage(root, "../x", nil); err == nil {
		t.Fatal("job id ../x accepted")
	}
}

// mustFail reads ref and wants an error naming the file.
func mustFail(t *testing.T, rf RestoreFiles, ref FileRef, why string) {
	t.Helper()
	_, err := readAllRef(t, rf, ref)
	if err == nil {
		t.Fatalf("%s: %s read without error", why, ref.Path)
	}
	if !strings.Contains(err.Error(), "checkpoint file "+ref.Path+":") {
		t.Fatalf("%s: err = %v, want it to name checkpoint file %s", why, err, ref.Path)
	}
	if p, ok := ErrFile(err); !ok || p != ref.Path {
		t.Fatalf("%s: ErrFile = %q, %v", why, p, ok)
	}
}

func TestRestoreRefusesAlteredFiles(t *testing.T) {
	keys(t, func(t *testing.T, key *sealed.Key) {
		s := openStorage(t, t.TempDir(), testJob, key)
		a := writeCheckpoint(t, s, 17, 1)
		b := writeCheckpoint(t, s, 18, 5)
		full := func(rel string) string { return filepath.Join(s.Dir(), rel) }
		op := a.files[0]

		// A byte flipped in the middle.
		raw, _ := os.ReadFile(full(op.Path))
		flipped := bytes.Clone(raw)
		flipped[len(flipped)/2] ^= 1
		os.WriteFile(full(op.Path), flipped, 0o600)
		mustFail(t, openRestore(t, a.cc, key), op, "byte flip")

		// Truncated.
		os.WriteFile(full(op.Path), raw[:len(raw)-100], 0o600)
		mustFail(t, openRestore(t, a.cc, key), op, "truncated")

		// Extended.
		os.WriteFile(full(op.Path), append(bytes.Clone(raw), 0), 0o600)
		mustFail(t, openRestore(t, a.cc, key), op, "extended")

		// Swapped: checkpoint 18's file of the same name under 17.
		other, _ := os.ReadFile(full(b.files[0].Path))
		os.WriteFile(full(op.Path), other, 0o600)
		mustFail(t, openRestore(t, a.cc, key), op, "swapped between checkpoints")
		os.WriteFile(full(op.Path), raw, 0o600)
		if _, err := readAllRef(t, openRestore(t, a.cc, key), op); err != nil {
			t.Fatalf("restored original: %v", err)
		}

		// A symbolic link in place of a file or of a directory is refused.
		priv := a.files[1]
		target := filepath.Join(t.TempDir(), "elsewhere")
		os.WriteFile(target, a.data[priv.Path], 0o600)
		os.Remove(full(priv.Path))
		os.Symlink(target, full(priv.Path))
		_, err := readAllRef(t, openRestore(t, a.cc, key), priv)
		if !errors.Is(err, fsguard.ErrSymlink) || !strings.Contains(err.Error(), "checkpoint file "+priv.Path) {
			t.Fatalf("symlinked file: err = %v", err)
		}
		os.Rename(full("chk-17/2-0-pebble"), full("moved"))
		os.Symlink(full("moved"), full("chk-17/2-0-pebble"))
		_, err = readAllRef(t, openRestore(t, a.cc, key), priv)
		if !errors.Is(err, fsguard.ErrSymlink) {
			t.Fatalf("symlinked directory: err = %v", err)
		}

		// Only files _metadata records open, and only as recorded.
		rf := openRestore(t, a.cc, key)
		for _, bad := range []FileRef{
			{Path: "chk-17/../chk-18/0-0-operator", Size: op.Size, SHA256: op.SHA256},
			{Path: "chk-17/9-9-keyed", Size: 1},
			{Path: op.Path, Size: op.Size + 1, SHA256: op.SHA256},
			b.files[0],
		} {
			if _, err := rf.Open(context.Background(), bad); err == nil {
				t.Errorf("Open(%+v) accepted", bad)
			}
		}
	})
}

func TestRestoreSealedRefusesAnotherJobsFile(t *testing.T) {
	key := testKey(t, 7)
	root := t.TempDir()
	const otherJob = "77aa0c9e7b4411ff"
	s := openStorage(t, root, testJob, key)
	o := openStorage(t, root, otherJob, key)
	a := writeCheckpoint(t, s, 17, 1)
	b := writeCheckpoint(t, o, 17, 1) // same id, same names, same content
	for _, ref := range a.files {
		other, err := os.ReadFile(filepath.Join(o.Dir(), ref.Path))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(s.Dir(), ref.Path), other, 0o600)
		mustFail(t, openRestore(t, a.cc, key), ref, "copied from another job")
	}
	// Another job's _metadata copied over this one's.
	other, _ := os.ReadFile(b.cc.Metadata)
	os.WriteFile(a.cc.Metadata, other, 0o600)
	if _, err := s.ReadMetadata(17); err == nil || !strings.Contains(err.Error(), "chk-17/_metadata") {
		t.Fatalf("another job's _metadata: err = %v", err)
	}
	// Another key: told apart from tampering.
	if _, err := openStorage(t, root, otherJob, testKey(t, 9)).ReadMetadata(17); !errors.Is(err, sealed.ErrWrongKey) {
		t.Fatalf("wrong key: err = %v", err)
	}
}

func TestMetadataRefusedWhenAltered(t *testing.T) {
	keys(t, func(t *testing.T, key *sealed.Key) {
		s := openStorage(t, t.TempDir(), testJob, key)
		a := writeCheckpoint(t, s, 17, 1)
		raw, _ := os.ReadFile(a.cc.Metadata)
		i := bytes.Index(raw, []byte(`"job-name"`))
		if key != nil {
			i = len(raw) / 2
		}
		flipped := bytes.Clone(raw)
		flipped[i+3] ^= 1
		os.WriteFile(a.cc.Metadata, flipped, 0o600)
		if _, err := s.ReadMetadata(17); err == nil || !strings.Contains(err.Error(), "checkpoint file chk-17/_metadata") {
			t.Fatalf("altered _metadata: err = %v", err)
		}
		if _, err := ReadCompleted(a.cc.Root, a.cc.Metadata, key); err == nil {
			t.Fatal("ReadCompleted accepted an altered _metadata")
		}
		// Moved to another checkpoint's directory.
		os.WriteFile(a.cc.Metadata, raw, 0o600)
		s.CreateCheckpoint(19)
		os.WriteFile(filepath.Join(s.Dir(), "chk-19/_metadata"), raw, 0o600)
		if _, err := ReadCompleted(s.Dir(), filepath.Join(s.Dir(), "chk-19/_metadata"), key); err == nil {
			t.Fatal("checkpoint 17's _metadata accepted as checkpoint 19's")
		}
	})
	// Sealed read without the key, unsealed read with one.
	s := openStorage(t, t.TempDir(), testJob, testKey(t, 7))
	a := writeCheckpoint(t, s, 17, 1)
	if _, err := ReadCompleted(a.cc.Root, a.cc.Metadata, nil); err == nil || !strings.Contains(err.Error(), sealed.KeyFileKey) {
		t.Fatalf("sealed without key: err = %v", err)
	}
	u := openStorage(t, t.TempDir(), testJob, nil)
	b := writeCheckpoint(t, u, 17, 1)
	if _, err := ReadCompleted(b.cc.Root, b.cc.Metadata, testKey(t, 7)); err == nil || !strings.Contains(err.Error(), "not sealed") {
		t.Fatalf("unsealed with a key: err = %v", err)
	}
	if _, err := NewRestoreFiles(tmTree(t, b.cc.Root, fsguard.ReadTree), testKey(t, 7), b.cc.Meta); err == nil {
		t.Fatal("restore files of an unsealed checkpoint with a key")
	}
}

func TestRetentionDeletes(t *testing.T) {
	s := openStorage(t, t.TempDir(), testJob, nil)
	a := writeCheckpoint(t, s, 1, 1)
	b := writeCheckpoint(t, s, 2, 2)
	c := writeCheckpoint(t, s, 3, 3)
	os.WriteFile(filepath.Join(s.Dir(), "chk-x"), nil, 0o600) // not a checkpoint
	ids, err := s.Checkpoints()
	if err != nil || len(ids) != 3 || ids[0] != 1 || ids[2] != 3 {
		t.Fatalf("Checkpoints = %v, %v", ids, err)
	}
	if err := s.DeleteCheckpoint(1); err != nil {
		t.Fatal(err)
	}
	// Checkpoint 3 also references 2's shared file, as an incremental one would.
	c.cc.Meta.Operators[1].Subtasks[0].Keyed.Files = append(c.cc.Meta.Operators[1].Subtasks[0].Keyed.Files, b.files[2])
	removed, err := s.DeleteUnreferenced([]*Metadata{c.cc.Meta})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != a.files[2].Path {
		t.Fatalf("removed %v, want only %s", removed, a.files[2].Path)
	}
	for p, exists := range map[string]bool{"chk-1": false, "chk-2": true, "chk-3": true, a.files[2].Path: false, b.files[2].Path: true, c.files[2].Path: true, "chk-x": true} {
		if _, err := os.Lstat(filepath.Join(s.Dir(), p)); (err == nil) != exists {
			t.Errorf("%s: exists %v, want %v", p, err == nil, exists)
		}
	}
	// Nested shared files: a referenced one keeps its directory, the
	// others in it go.
	for _, rel := range []string{"shared/d/keep.sst", "shared/d/drop.sst", "shared/e/drop.sst"} {
		f, err := s.tree.Create(rel)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	c.cc.Meta.Operators[1].Subtasks[0].Keyed.Files = append(c.cc.Meta.Operators[1].Subtasks[0].Keyed.Files, FileRef{Path: "shared/d/keep.sst", Size: 0, SHA256: sum64, SealedFor: 3})
	removed, err = s.DeleteUnreferenced([]*Metadata{c.cc.Meta})
	if err != nil || strings.Join(removed, ",") != "shared/d/drop.sst,shared/e" {
		t.Fatalf("nested: removed %v, %v", removed, err)
	}
	if !s.exists(t, "shared/d/keep.sst") || !s.exists(t, b.files[2].Path) {
		t.Fatal("a referenced shared file was deleted")
	}
	if err := s.RemoveAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(s.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("job directory left: %v", err)
	}
}

func TestSavepointStorage(t *testing.T) {
	keys(t, func(t *testing.T, key *sealed.Key) {
		target := filepath.Join(t.TempDir(), "sp")
		sp, err := CreateSavepoint(target, testJob, key)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^savepoint-5d1f2a-[0-9a-f]{12}$`).MatchString(filepath.Base(sp.Dir())) || filepath.Dir(sp.Dir()) != target {
			t.Fatalf("savepoint directory %s", sp.Dir())
		}
		if perm(t, sp.Dir()) != 0o700 {
			t.Fatalf("savepoint directory mode %04o", perm(t, sp.Dir()))
		}
		sf, err := NewSnapshotFiles(tmTree(t, sp.Dir(), fsguard.StateDir), testJob, key, Info{ID: 9, Timestamp: time.Now(), Type: event.SavepointSuspend})
		if err != nil {
			t.Fatal(err)
		}
		if sf.SharedAllowed() {
			t.Fatal("a savepoint allows shared files")
		}
		if _, err := sf.CreateShared("x.sst"); err == nil {
			t.Fatal("CreateShared in a savepoint")
		}
		for _, bad := range []string{"a/b", "../x", "_metadata", "/abs", ""} {
			if w, err := sf.Create(bad); err == nil {
				w.Abort()
				t.Errorf("Create(%q) accepted in a savepoint", bad)
			}
		}
		w, err := sf.Create("0-0-operator")
		data := payload(5000, 3)
		ref := writeFile(t, w, err, data)
		if ref.Path != "0-0-operator" {
			t.Fatalf("savepoint file path %q", ref.Path)
		}
		aborted, err := sf.Create("1-0-operator")
		if err != nil {
			t.Fatal(err)
		}
		aborted.Write([]byte("partial"))
		aborted.Abort()
		if _, err := os.Lstat(filepath.Join(sp.Dir(), "1-0-operator")); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("aborted file left behind")
		}
		m := &Metadata{
			Format: Format, JobID: testJob, JobName: "j", CheckpointID: 9, Type: TypeSavepointSuspend,
			Triggered: 1000, Completed: 2000, MaxParallelism: 128, Sealing: sealingOf(key), KeyID: keyIDOf(key),
			Operators: []OperatorState{{Name: "gen", Type: "generator", Parallelism: 1, Subtasks: []SubtaskState{{Operator: &ListsHandle{File: ref}}}}},
		}
		cc, err := sp.WriteMetadata(m)
		if err != nil {
			t.Fatal(err)
		}
		if perm(t, cc.Metadata) != 0o600 {
			t.Fatalf("_metadata mode %04o", perm(t, cc.Metadata))
		}
		for _, p := range []string{sp.Dir(), sp.Dir() + "/", cc.Metadata, "file:" + sp.Dir(), "file://" + cc.Metadata} {
			root, meta, err := Resolve(p)
			if err != nil || root != sp.Dir() || meta != cc.Metadata {
				t.Fatalf("Resolve(%s) = %s, %s, %v", p, root, meta, err)
			}
		}
		back, err := ReadCompleted(sp.Dir(), cc.Metadata, key)
		if err != nil {
			t.Fatal(err)
		}
		if !back.Savepoint || back.ID != 9 || back.MetadataSHA256 != cc.MetadataSHA256 {
			t.Fatalf("read back %+v", back)
		}
		// Relocatable: the moved directory restores.
		moved := filepath.Join(t.TempDir(), "moved")
		if err := os.Rename(sp.Dir(), moved); err != nil {
			t.Fatal(err)
		}
		mc, err := ReadCompleted(moved, filepath.Join(moved, MetadataName), key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAllRef(t, openRestore(t, mc, key), ref)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("moved savepoint: %v", err)
		}
		sp.Close()
	})
}

func TestSavepointMetadataMustNameItsHeadersIDs(t *testing.T) {
	key := testKey(t, 7)
	sp, err := CreateSavepoint(t.TempDir(), testJob, key)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	// _metadata sealed for checkpoint 9 whose content says checkpoint 10.
	m := &Metadata{Format: Format, JobID: testJob, CheckpointID: 10, Type: TypeSavepoint, Triggered: 1, Completed: 1, MaxParallelism: 128, Sealing: SealingAESGCM, KeyID: key.ID()}
	body, _ := Marshal(m)
	var out bytes.Buffer
	w, _ := sealed.NewWriter(&out, key, sealed.Binding{JobID: testJob, CheckpointID: 9, Path: MetadataName})
	w.Write(body)
	w.Close()
	p := filepath.Join(sp.Dir(), MetadataName)
	os.WriteFile(p, out.Bytes(), 0o600)
	if _, err := ReadCompleted(sp.Dir(), p, key); err == nil || !strings.Contains(err.Error(), "sealed for job") {
		t.Fatalf("err = %v", err)
	}
}

func TestResolveErrors(t *testing.T) {
	dir := t.TempDir()
	for p, want := range map[string]string{
		dir:                           "savepoint " + dir + ": no _metadata there (is it the savepoint directory printed by sluice savepoint?)",
		filepath.Join(dir, "missing"): "no such directory",
		"relative/sp":                 "not an absolute path",
		"file://host/sp":              "with a host",
		filepath.Join(dir, "chk-3"):   "no such directory",
	} {
		_, _, err := Resolve(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve(%s) = %v, want %q", p, err, want)
		}
	}
	for in, want := range map[string]string{"file:///a/../b": "/b", "file:/x/": "/x", "/y//z": "/y/z"} {
		if got, err := LocalPath(in); err != nil || got != want {
			t.Errorf("LocalPath(%s) = %s, %v, want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"s3://bucket/sp", "hdfs://nn/x", "x/y", "file:rel"} {
		if _, err := LocalPath(in); err == nil || !strings.Contains(err.Error(), in) {
			t.Errorf("LocalPath(%s) = %v, want an error naming it", in, err)
		}
	}
	if s, err := OpenJobStorage("file://"+dir, testJob, nil); err != nil || s.Dir() != filepath.Join(dir, testJob) {
		t.Fatalf("OpenJobStorage(file://%s) = %v", dir, err)
	} else {
		s.Close()
	}
	// A chk-N directory resolves to the job directory as its root.
	chk := filepath.Join(dir, testJob, "chk-3")
	os.MkdirAll(chk, 0o700)
	os.WriteFile(filepath.Join(chk, MetadataName), []byte("x"), 0o600)
	root, meta, err := Resolve("file://" + chk)
	if err != nil || root != filepath.Join(dir, testJob) || meta != filepath.Join(chk, MetadataName) {
		t.Fatalf("Resolve(chk-3) = %s, %s, %v", root, meta, err)
	}
	// A link as _metadata is not followed.
	os.Remove(filepath.Join(chk, MetadataName))
	os.Symlink("/etc/hostname", filepath.Join(chk, MetadataName))
	if _, _, err := Resolve(chk); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("symlinked _metadata: %v", err)
	}
}

func (s *JobStorage) exists(t *testing.T, rel string) bool {
	t.Helper()
	_, err := os.Lstat(filepath.Join(s.Dir(), rel))
	return err == nil
}
