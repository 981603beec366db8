package pebblestate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/hashmap"
	"github.com/sluice-dev/sluice/internal/state/statetest"
)

func mustNew(t testing.TB, cfg state.Config, restore []state.Restore) *Backend {
	t.Helper()
	b, err := newBackend(t, cfg, restore)
	if err != nil {
		t.Fatal(err)
	}
	return b.(*Backend)
}

func incremental(kgs state.KeyGroupRange) state.Config {
	cfg := statetest.Config(kgs)
	cfg.Incremental = true
	return cfg
}

// writeFiles takes snapshot id of b and writes its files into a checkpoint
// directory of root; it returns the handle and the bytes written.
func writeFiles(t testing.TB, b state.Backend, root string, id int64, prefix string) (*checkpoint.KeyedHandle, *statetest.Dir) {
	t.Helper()
	s, err := b.Snapshot(state.SnapshotInfo{ID: id})
	statetest.Check(t, err)
	defer s.Release()
	dir := &statetest.Dir{Root: root, ID: id}
	h, err := s.(state.FileSnapshot).WriteFiles(context.Background(), dir, prefix)
	statetest.Check(t, err)
	return h, dir
}

func restoreOf(t testing.TB, h *checkpoint.KeyedHandle, root string, id int64, sameJob bool) state.Restore {
	t.Helper()
	r, err := state.RestoreOf(h, &statetest.Dir{Root: root, ID: id}, sameJob)
	statetest.Check(t, err)
	return r
}

func TestWorkDir(t *testing.T) {
	parent := t.TempDir()
	cfg := statetest.Config(statetest.All)
	cfg.WorkDir = filepath.Join(parent, "state", "job-1", "2-0")
	b, err := Factory{}.New(context.Background(), cfg, nil)
	statetest.Check(t, err)
	for _, d := range []string{filepath.Dir(cfg.WorkDir), cfg.WorkDir} {
		fi, err := os.Stat(d)
		statetest.Check(t, err)
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", d, fi.Mode().Perm())
		}
	}
	statetest.Fill(t, 10, statetest.Sub{B: b, KG: statetest.All})
	s, err := b.Snapshot(state.SnapshotInfo{ID: 1})
	statetest.Check(t, err)
	// Close releases the snapshot still held and removes everything.
	statetest.Check(t, b.Close())
	if _, err := os.Stat(cfg.WorkDir); !os.IsNotExist(err) {
		t.Errorf("work directory after Close: %v", err)
	}
	s.Release()

	// A work directory in use is refused.
	statetest.Check(t, os.MkdirAll(cfg.WorkDir, 0o700))
	statetest.Check(t, os.WriteFile(filepath.Join(cfg.WorkDir, "x"), nil, 0o600))
	if _, err := (Factory{}).New(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("non-empty work directory: %v", err)
	}
	cfg.WorkDir = ""
	if _, err := (Factory{}).New(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "no work directory") {
		t.Errorf("no work directory: %v", err)
	}
}

func TestFullFilesRoundTrip(t *testing.T) {
	root := t.TempDir()
	b := mustNew(t, statetest.Config(statetest.All), nil)
	statetest.Fill(t, 500, statetest.Sub{B: b, KG: statetest.All})
	want := statetest.DumpOf(t, b)
	h, dir := writeFiles(t, b, root, 1, "2-0")
	if h.Format != checkpoint.FormatPebble || h.KeyGroups.First != 0 || h.KeyGroups.Last != statetest.Max-1 {
		t.Errorf("handle %s %v", h.Format, h.KeyGroups)
	}
	if got := fmt.Sprint(h.States); got != "[{v value} {l list} {m map} {r reducing} {wv value}]" {
		t.Errorf("handle states %s", got)
	}
	for _, f := range h.Files {
		if !strings.HasPrefix(f.Path, "chk-1/2-0-pebble/") || f.SealedFor != 0 || f.SHA256 == "" {
			t.Errorf("full checkpoint file %+v", f)
		}
	}
	if dir.Written() == 0 {
		t.Fatal("nothing written")
	}
	r := mustNew(t, statetest.Config(statetest.All), []state.Restore{restoreOf(t, h, root, 1, true)})
	if got := statetest.DumpOf(t, r); !slices.Equal(got, want) {
		t.Fatalf("restored: %d entries, want %d", len(got), len(want))
	}
	statetest.CheckTyped(t, r, 42)
	// The restored backend goes on: new states, new keys, a new snapshot.
	s := statetest.Register(t, r)
	statetest.SetKey(r, 1000)
	statetest.Check(t, s.V.Set(5))
	if _, err := r.Register("new", state.KindMap); err != nil {
		t.Fatal(err)
	}
	h2, _ := writeFiles(t, r, root, 2, "2-0")
	if len(h2.States) != 6 {
		t.Errorf("states after restore: %v", h2.States)
	}
}

// TestIncremental: the second checkpoint, after 1% of the keys changed,
// uploads a fraction of the first; it references the first's SSTs, and
// restores to the state at the second.
func TestIncremental(t *testing.T) {
	const keys = 50000
	root := t.TempDir()
	b := mustNew(t, incremental(statetest.All), nil)
	v, err := state.NewValue(b, "v", state.Int64Codec)
	statetest.Check(t, err)
	set := func(from, to, step int, val int64) {
		for k := from; k < to; k += step {
			statetest.SetKey(b, k)
			statetest.Check(t, v.Set(val+int64(k)))
		}
	}
	set(0, keys, 1, 0)
	h1, d1 := writeFiles(t, b, root, 1, "2-0")
	shared1 := 0
	for _, f := range h1.Files {
		if strings.HasPrefix(f.Path, "shared/") {
			shared1++
			if f.SealedFor != 1 || !strings.HasPrefix(f.Path, "shared/"+b.uid+"-1-") {
				t.Errorf("shared file %+v", f)
			}
		} else if !strings.HasPrefix(f.Path, "chk-1/2-0-pebble/") || strings.HasSuffix(f.Path, ".sst") {
			t.Errorf("private file %+v", f)
		}
	}
	if shared1 == 0 {
		t.Fatal("no shared SST in an incremental checkpoint")
	}
	b.NotifyCheckpointComplete(1)

	set(0, keys, 100, 1_000_000) // 1% of the keys
	h2, d2 := writeFiles(t, b, root, 2, "2-0")
	t.Logf("first checkpoint %d bytes in %d files, second %d bytes in %d files", d1.Written(), d1.Files(), d2.Written(), d2.Files())
	if d2.Written()*5 > d1.Written() {
		t.Errorf("the second checkpoint wrote %d bytes, the first %d: want less than a fifth", d2.Written(), d1.Written())
	}
	reused := 0
	for _, f := range h2.Files {
		if slices.Contains(h1.Files, f) {
			reused++
			if f.SealedFor != 1 {
				t.Errorf("reused file %+v lost its SealedFor", f)
			}
		}
	}
	if reused == 0 {
		t.Error("the second checkpoint references none of the first's files")
	}
	want := statetest.DumpOf(t, b)

	// Not completed: checkpoint 3 uploads again what 2 uploaded, under new names.
	set(1, keys, 100, 2_000_000)
	_, d3 := writeFiles(t, b, root, 3, "2-0")
	if d3.Written() <= d2.Written() {
		t.Errorf("checkpoint 3, whose base is 1 (2 never completed), wrote %d bytes, 2 wrote %d", d3.Written(), d2.Written())
	}

	// Restored in the same job, checkpoint 2 is the new backend's base.
	r := mustNew(t, incremental(statetest.All), []state.Restore{restoreOf(t, h2, root, 2, true)})
	if got := statetest.DumpOf(t, r); !slices.Equal(got, want) {
		t.Fatalf("restored from the incremental checkpoint: %d entries, want %d", len(got), len(want))
	}
}

// TestRescaleFiles restores "pebble/1" snapshots of 2 subtasks at 4, 1 and
// 2 (the same ranges: opened as they are).
func TestRescaleFiles(t *testing.T) {
	root := t.TempDir()
	old := []statetest.Sub{
		{B: mustNew(t, incremental(statetest.RangeOf(0, 2)), nil), KG: statetest.RangeOf(0, 2)},
		{B: mustNew(t, statetest.Config(statetest.RangeOf(1, 2)), nil), KG: statetest.RangeOf(1, 2)},
	}
	statetest.Fill(t, 1000, old...)
	var handles []state.Restore
	var whole []string
	for i, s := range old {
		whole = append(whole, statetest.DumpOf(t, s.B)...)
		h, _ := writeFiles(t, s.B, root, 1, fmt.Sprintf("2-%d", i))
		handles = append(handles, restoreOf(t, h, root, 1, true))
	}
	slices.Sort(whole)
	if len(whole) != statetest.Entries(1000) {
		t.Fatalf("%d entries, want %d", len(whole), statetest.Entries(1000))
	}
	for _, p := range []int{4, 1, 2, 3} {
		t.Run(fmt.Sprintf("2to%d", p), func(t *testing.T) {
			var union []string
			for i := range p {
				kgs := statetest.RangeOf(i, p)
				nb := mustNew(t, statetest.Config(kgs), handles)
				part := statetest.DumpOf(t, nb)
				statetest.CheckKeyGroups(t, part, kgs)
				union = append(union, part...)
				if p == 1 {
					statetest.CheckTyped(t, nb, 17)
				}
			}
			slices.Sort(union)
			if !slices.Equal(union, whole) {
				t.Errorf("union of the %d parts: %d entries, the whole: %d", p, len(union), len(whole))
			}
		})
	}
}

// TestCanonicalAcrossBackends: a hashmap snapshot restores into pebble and
// a pebble canonical snapshot into hashmap, at the same and other ranges;
// hashmap refuses pebble's own files with an error saying what to do.
func TestCanonicalAcrossBackends(t *testing.T) {
	ctx := context.Background()
	hm, err := hashmap.Factory{}.New(ctx, statetest.Config(statetest.All), nil)
	statetest.Check(t, err)
	defer hm.Close()
	pb := mustNew(t, statetest.Config(statetest.All), nil)
	statetest.Fill(t, 300, statetest.Sub{B: hm, KG: statetest.All})
	statetest.Fill(t, 300, statetest.Sub{B: pb, KG: statetest.All})
	fromHashmap := statetest.TakeSnapshot(t, hm, "savepoint/2-0-keyed")
	fromPebble := statetest.TakeSnapshot(t, pb, "savepoint/2-0-keyed")
	want := statetest.Dump(t, fromHashmap)
	if got := statetest.Dump(t, fromPebble); !slices.Equal(got, want) {
		t.Fatalf("the same writes give different canonical snapshots: %d vs %d entries", len(got), len(want))
	}
	for _, kgs := range []state.KeyGroupRange{statetest.All, statetest.RangeOf(1, 3)} {
		intoPebble := mustNew(t, statetest.Config(kgs), []state.Restore{fromHashmap.Restore()})
		intoHashmap, err := hashmap.Factory{}.New(ctx, statetest.Config(kgs), []state.Restore{fromPebble.Restore()})
		statetest.Check(t, err)
		a, b := statetest.DumpOf(t, intoPebble), statetest.DumpOf(t, intoHashmap)
		statetest.CheckKeyGroups(t, a, kgs)
		if !slices.Equal(a, b) || len(a) == 0 {
			t.Errorf("key groups %s: hashmap→pebble %d entries, pebble→hashmap %d", kgs, len(a), len(b))
		}
		intoHashmap.Close()
	}
	root := t.TempDir()
	h, _ := writeFiles(t, pb, root, 1, "2-0")
	_, err = hashmap.Factory{}.New(ctx, statetest.Config(statetest.All), []state.Restore{restoreOf(t, h, root, 1, true)})
	if err == nil || !strings.Contains(err.Error(), "is in format pebble/1, which the hashmap backend does not read") || !strings.Contains(err.Error(), "state.backend.type: pebble") {
		t.Errorf("hashmap restoring pebble/1: %v", err)
	}
}

func TestFilesRefused(t *testing.T) {
	root := t.TempDir()
	b := mustNew(t, statetest.Config(statetest.All), nil)
	statetest.Fill(t, 50, statetest.Sub{B: b, KG: statetest.All})
	s, err := b.Snapshot(state.SnapshotInfo{ID: 1})
	statetest.Check(t, err)
	if _, err := s.(state.FileSnapshot).WriteFiles(context.Background(), &statetest.Dir{Root: root, ID: 1, Savepoint: true}, "2-0"); err == nil || !strings.Contains(err.Error(), "savepoint is written in the canonical key-group stream") {
		t.Errorf("WriteFiles of a savepoint: %v", err)
	}
	s.Release()
	h, _ := writeFiles(t, b, root, 2, "2-0")

	tamper := func(f func(h *checkpoint.KeyedHandle)) *checkpoint.KeyedHandle {
		c := *h
		c.Files = slices.Clone(h.Files)
		c.States = slices.Clone(h.States)
		f(&c)
		return &c
	}
	for _, tt := range []struct {
		name string
		h    *checkpoint.KeyedHandle
		kgs  state.KeyGroupRange
		want string
	}{
		{"altered file", tamper(func(h *checkpoint.KeyedHandle) { h.Files[0].SHA256 = strings.Repeat("0", 64) }), statetest.All, "the file was altered"},
		{"states differ", tamper(func(h *checkpoint.KeyedHandle) { h.States[0].Kind = "map" }), statetest.All, "but its handle lists"},
		{"states differ, rescaled", tamper(func(h *checkpoint.KeyedHandle) { h.States[0].Kind = "map" }), statetest.RangeOf(0, 2), "but its handle lists"},
		{"path escapes", tamper(func(h *checkpoint.KeyedHandle) { h.Files[0].Path = "chk-2/../../x" }), statetest.All, `component ".."`},
		{"bad shared name", tamper(func(h *checkpoint.KeyedHandle) { h.Files[0].Path = "shared/MANIFEST" }), statetest.All, "want <backend uid>-<checkpoint id>-<file>.sst"},
		{"two files of one name", tamper(func(h *checkpoint.KeyedHandle) { h.Files = append(h.Files, h.Files[0]) }), statetest.All, "two files are"},
		{"no files", tamper(func(h *checkpoint.KeyedHandle) { h.Files = nil }), statetest.All, "no files"},
		{"no database among the files", tamper(func(h *checkpoint.KeyedHandle) {
			h.Files = slices.DeleteFunc(h.Files, func(f checkpoint.FileRef) bool { return !strings.HasSuffix(f.Path, ".sst") })
		}), statetest.All, "open the restored database"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := state.RestoreOf(tt.h, &statetest.Dir{Root: root, ID: 2}, true)
			if err == nil {
				_, err = newBackend(t, statetest.Config(tt.kgs), []state.Restore{r})
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestRestoredBaseIsReused: a backend restored from a checkpoint of its
// own job references that checkpoint's shared files instead of uploading
// them again. The state is compacted into one SST first, so that opening
// the restored database has nothing to compact.
func TestRestoredBaseIsReused(t *testing.T) {
	root := t.TempDir()
	b := mustNew(t, incremental(statetest.All), nil)
	statetest.Fill(t, 5000, statetest.Sub{B: b, KG: statetest.All})
	statetest.Check(t, b.db.Flush())
	statetest.Check(t, b.db.Compact(context.Background(), groupKey(0), []byte{0xFF, 0xFF, 0xFF}, false))
	h1, d1 := writeFiles(t, b, root, 1, "2-0")
	b.NotifyCheckpointComplete(1)

	r := mustNew(t, incremental(statetest.All), []state.Restore{restoreOf(t, h1, root, 1, true)})
	h2, d2 := writeFiles(t, r, root, 2, "2-0")
	shared := 0
	for _, f := range h2.Files {
		if strings.HasPrefix(f.Path, "shared/") {
			shared++
			if !slices.Contains(h1.Files, f) {
				t.Errorf("the restored backend uploaded %s; checkpoint 1 has it", f.Path)
			}
		}
	}
	if shared == 0 {
		t.Error("no shared file in the restored backend's checkpoint")
	}
	t.Logf("checkpoint 1: %d bytes; after restore, unchanged: %d bytes", d1.Written(), d2.Written())
	if d2.Written()*5 > d1.Written() {
		t.Errorf("the restored backend wrote %d bytes, checkpoint 1 %d", d2.Written(), d1.Written())
	}
	// Restored from another job, it uploads everything.
	o := mustNew(t, incremental(statetest.All), []state.Restore{restoreOf(t, h1, root, 1, false)})
	h3, _ := writeFiles(t, o, t.TempDir(), 1, "2-0")
	for _, f := range h3.Files {
		if strings.HasPrefix(f.Path, "shared/") && slices.Contains(h1.Files, f) {
			t.Errorf("a backend restored from another job references %s", f.Path)
		}
	}
}

// TestBaseFollowsCompletions: only a completed checkpoint becomes the
// base, a late notification of an older one changes nothing, and the
// checkpoints that never complete are forgotten beyond maxPending.
func TestBaseFollowsCompletions(t *testing.T) {
	root := t.TempDir()
	b := mustNew(t, incremental(statetest.All), nil)
	statetest.Fill(t, 200, statetest.Sub{B: b, KG: statetest.All})
	h1, _ := writeFiles(t, b, root, 1, "2-0")
	h2, _ := writeFiles(t, b, root, 2, "2-0")
	b.NotifyCheckpointComplete(2)
	b.NotifyCheckpointComplete(1) // late: 2 subsumes it
	h3, _ := writeFiles(t, b, root, 3, "2-0")
	for _, f := range h3.Files {
		if strings.HasPrefix(f.Path, "shared/") && (!slices.Contains(h2.Files, f) || slices.Contains(h1.Files, f)) {
			t.Errorf("checkpoint 3 has %+v; its base is checkpoint 2", f)
		}
	}
	for id := int64(4); id < 4+2*maxPending; id++ {
		writeFiles(t, b, root, id, "2-0")
	}
	b.mu.Lock()
	n := len(b.pending)
	b.mu.Unlock()
	if n > maxPending {
		t.Errorf("%d uncompleted checkpoints remembered, at most %d", n, maxPending)
	}
}

func TestWriteFilesChecks(t *testing.T) {
	root := t.TempDir()
	b := mustNew(t, statetest.Config(statetest.All), nil)
	statetest.Fill(t, 20, statetest.Sub{B: b, KG: statetest.All})
	s, err := b.Snapshot(state.SnapshotInfo{ID: 1})
	statetest.Check(t, err)
	fs := s.(state.FileSnapshot)
	for _, prefix := range []string{"", "../x", "a/b"} {
		if _, err := fs.WriteFiles(context.Background(), &statetest.Dir{Root: root, ID: 1}, prefix); err == nil || !strings.Contains(err.Error(), "is not a plain name") {
			t.Errorf("prefix %q: %v", prefix, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := fs.WriteFiles(ctx, &statetest.Dir{Root: root, ID: 1}, "2-0"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	if _, err := fs.WriteFiles(context.Background(), &statetest.Dir{Root: root, ID: 1}, "2-0"); err == nil || !strings.Contains(err.Error(), "already written") {
		t.Errorf("written twice: %v", err)
	}
	s.Release()
	s2, err := b.Snapshot(state.SnapshotInfo{ID: 2})
	statetest.Check(t, err)
	s2.Release()
	if _, err := s2.(state.FileSnapshot).WriteFiles(context.Background(), &statetest.Dir{Root: root, ID: 2}, "2-0"); err == nil || !strings.Contains(err.Error(), "released") {
		t.Errorf("after Release: %v", err)
	}
	// Released snapshots leave no local checkpoint behind.
	if ents, _ := os.ReadDir(filepath.Join(b.cfg.WorkDir, "chk")); len(ents) != 0 {
		t.Errorf("local checkpoints left: %d", len(ents))
	}
}

// blockingDir holds the first file created until release is closed.
type blockingDir struct {
	*statetest.Dir
	created chan struct{}
	release chan struct{}
	once    sync.Once
}

func (d *blockingDir) Create(name string) (checkpoint.FileWriter, error) {
	d.once.Do(func() { close(d.created) })
	<-d.release
	return d.Dir.Create(name)
}

func (d *blockingDir) CreateShared(name string) (checkpoint.FileWriter, error) {
	d.once.Do(func() { close(d.created) })
	<-d.release
	return d.Dir.CreateShared(name)
}

// TestSnapshotDoesNotWaitForWrite: the task takes the next snapshot while
// the previous one is still being written.
func TestSnapshotDoesNotWaitForWrite(t *testing.T) {
	b := mustNew(t, statetest.Config(statetest.All), nil)
	statetest.Fill(t, 100, statetest.Sub{B: b, KG: statetest.All})
	s1, err := b.Snapshot(state.SnapshotInfo{ID: 1})
	statetest.Check(t, err)
	dst := &blockingDir{Dir: &statetest.Dir{Root: t.TempDir(), ID: 1}, created: make(chan struct{}), release: make(chan struct{})}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(dst.release)
	wg.Go(func() {
		_, err := s1.(state.FileSnapshot).WriteFiles(context.Background(), dst, "2-0")
		if err != nil {
			t.Error(err)
		}
		s1.Release()
	})
	<-dst.created
	done := make(chan error, 1)
	go func() {
		s2, err := b.Snapshot(state.SnapshotInfo{ID: 2})
		if err == nil {
			s2.Release()
		}
		done <- err
	}()
	select {
	case err := <-done:
		statetest.Check(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Snapshot waited for the previous snapshot's WriteFiles")
	}
}
