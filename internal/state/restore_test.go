package state_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/hashmap"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
	"github.com/sluice-dev/sluice/internal/state/statetest"
)

// TestRestoreOf turns a kg-stream handle of _metadata into a Restore that
// reads the file through RestoreFiles, and a native one into a Restore
// carrying it; malformed handles are refused.
func TestRestoreOf(t *testing.T) {
	ctx := t.Context()
	b, err := hashmap.Factory{}.New(ctx, statetest.Config(statetest.All), nil)
	statetest.Check(t, err)
	statetest.Fill(t, 50, statetest.Sub{B: b, KG: statetest.All})
	want := statetest.DumpOf(t, b)

	dir := &statetest.Dir{Root: t.TempDir(), ID: 3}
	s, err := b.Snapshot(state.SnapshotInfo{ID: 3})
	statetest.Check(t, err)
	w, err := dir.Create("2-0-keyed")
	statetest.Check(t, err)
	sh, err := s.Write(ctx, w)
	statetest.Check(t, err)
	ref, err := w.Commit()
	statetest.Check(t, err)
	s.Release()
	h := &checkpoint.KeyedHandle{Format: checkpoint.FormatKGStream, KeyGroups: keygroup.Range{First: sh.KeyGroups.First, Last: sh.KeyGroups.Last},
		Offsets: sh.Offsets, States: state.HandleStates(sh.States), Files: []checkpoint.FileRef{ref}}

	r, err := state.RestoreOf(h, dir, true)
	statetest.Check(t, err)
	if r.Name != "chk-3/2-0-keyed" || r.Format() != state.StreamFormat || r.KeyGroups() != statetest.All || r.Native != nil || !r.SameJob {
		t.Errorf("restore %+v", r)
	}
	got, err := hashmap.Factory{}.New(ctx, statetest.Config(statetest.RangeOf(1, 2)), []state.Restore{r})
	statetest.Check(t, err)
	part := statetest.DumpOf(t, got)
	statetest.CheckKeyGroups(t, part, statetest.RangeOf(1, 2))
	for _, line := range part {
		if !slices.Contains(want, line) {
			t.Errorf("restored %s, not in the snapshot", line)
		}
	}

	native := &checkpoint.KeyedHandle{Format: checkpoint.FormatPebble, KeyGroups: keygroup.Range{First: 0, Last: 3},
		Files: []checkpoint.FileRef{{Path: "chk-3/2-0-pebble/MANIFEST-000001"}}}
	r, err = state.RestoreOf(native, dir, false)
	statetest.Check(t, err)
	if r.Native != native || r.Files == nil || r.Format() != checkpoint.FormatPebble || r.Name != "chk-3/2-0-pebble" {
		t.Errorf("native restore %+v", r)
	}

	two := *h
	two.Files = []checkpoint.FileRef{ref, ref}
	none := *h
	none.Files = nil
	for _, c := range []struct {
		name string
		h    *checkpoint.KeyedHandle
		rf   checkpoint.RestoreFiles
		want string
	}{
		{"nil handle", nil, dir, "no handle"},
		{"no files", &none, dir, "no files"},
		{"two stream files", &two, dir, "2 files, want 1"},
		{"nothing to open with", h, nil, "nothing to open"},
	} {
		if _, err := state.RestoreOf(c.h, c.rf, false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
