package dataflow

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/hashmap"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
	"github.com/sluice-dev/sluice/internal/state/pebblestate"
	"github.com/sluice-dev/sluice/internal/state/statetest"
)

// TestWriteKeyedWrittenBytes: the bytes a checkpoint wrote (CheckpointMetrics.Written,
// checkpointed_size in the REST statistics) leave out the shared files an incremental
// checkpoint only references, while the bytes it references (Size, state_size) count
// them. Before, both were the referenced size, so an incremental checkpoint looked as
// large as a full one.
func TestWriteKeyedWrittenBytes(t *testing.T) {
	const keys, maxPar = 20_000, 128
	for _, tc := range []struct {
		name        string
		f           state.Factory
		incremental bool
	}{{"hashmap", hashmap.Factory{}, false}, {"pebble-full", pebblestate.Factory{}, false}, {"pebble-incremental", pebblestate.Factory{}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			be, err := tc.f.New(context.Background(), state.Config{
				Operator: "agg", KeyGroups: state.KeyGroupRange{First: 0, Last: maxPar - 1}, MaxParallelism: maxPar,
				WorkDir: filepath.Join(t.TempDir(), "work"), Incremental: tc.incremental,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			v, err := state.NewValue(be, "acc", state.Int64Codec)
			if err != nil {
				t.Fatal(err)
			}
			set := func(from, step int) {
				for i := from; i < keys; i += step {
					k := binary.BigEndian.AppendUint64(nil, uint64(i)*0x9e3779b97f4a7c15)
					be.SetCurrentKey(k, keygroup.Of(keygroup.Hash(k), maxPar))
					if err := v.Set(int64(i)); err != nil {
						t.Fatal(err)
					}
				}
			}
			root := t.TempDir()
			checkpoint := func(id int64) (size, written int64) {
				s, err := be.Snapshot(state.SnapshotInfo{ID: id})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Release()
				dir := &statetest.Dir{Root: root, ID: id}
				_, size, written, err = writeKeyed(context.Background(), dir, id, "0-0-keyed", s)
				if err != nil {
					t.Fatal(err)
				}
				if written != dir.Written() {
					t.Errorf("checkpoint %d: written %d, but %d bytes were committed", id, written, dir.Written())
				}
				be.NotifyCheckpointComplete(id)
				return size, written
			}
			set(0, 1)
			size1, written1 := checkpoint(1)
			if size1 <= 0 || written1 != size1 {
				t.Fatalf("first checkpoint: size %d, written %d: want equal and > 0", size1, written1)
			}
			set(0, 100) // 1% of the keys change
			size2, written2 := checkpoint(2)
			if tc.incremental {
				if written2 >= size2 || written2 >= written1 {
					t.Errorf("incremental second checkpoint: written %d of %d referenced (first wrote %d): want fewer than both", written2, size2, written1)
				}
			} else if written2 != size2 {
				t.Errorf("full second checkpoint: written %d, size %d: want equal", written2, size2)
			}
		})
	}
}
