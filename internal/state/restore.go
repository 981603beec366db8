package state

import (
	"context"
	"fmt"
	"io"
	"path"

	"github.com/sluice-dev/sluice/internal/checkpoint"
)

// RestoreOf is the Restore of a keyed handle of _metadata whose files are
// opened with files. sameJob says the snapshot is a checkpoint of the job
// being restored (see Restore.SameJob).
func RestoreOf(h *checkpoint.KeyedHandle, files checkpoint.RestoreFiles, sameJob bool) (Restore, error) {
	if h == nil {
		return Restore{}, fmt.Errorf("keyed state: no handle")
	}
	if files == nil {
		return Restore{}, fmt.Errorf("keyed state: nothing to open its files with")
	}
	if len(h.Files) == 0 {
		return Restore{}, fmt.Errorf("keyed state %s of key groups %s: no files", h.Format, KeyGroupRange(h.KeyGroups))
	}
	if h.Format != StreamFormat {
		return Restore{Name: path.Dir(h.Files[0].Path), Native: h, Files: files, SameJob: sameJob}, nil
	}
	if len(h.Files) != 1 {
		return Restore{}, fmt.Errorf("keyed state %s of key groups %s: %d files, want 1", h.Format, KeyGroupRange(h.KeyGroups), len(h.Files))
	}
	ref := h.Files[0]
	return Restore{
		Name: ref.Path,
		// The states' ids are not in _metadata: the file's header declares
		// them, and the file is verified as a whole.
		Handle:  &StreamHandle{Format: h.Format, KeyGroups: KeyGroupRange(h.KeyGroups), Offsets: h.Offsets},
		Open:    func(ctx context.Context) (io.ReadCloser, error) { return files.Open(ctx, ref) },
		SameJob: sameJob,
	}, nil
}

// HandleStates is states as _metadata lists them.
func HandleStates(states []StateInfo) []checkpoint.StateInfo {
	out := make([]checkpoint.StateInfo, len(states))
	for i, s := range states {
		out[i] = checkpoint.StateInfo{Name: s.Name, Kind: s.Kind.String()}
	}
	return out
}
