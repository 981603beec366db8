package checkpoint

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// Format is the value of _metadata's "format".
const Format = "sluice-checkpoint/1"

// MaxMetadataSize bounds a _metadata document: it is read before anything
// in it can be trusted, so its size is bounded first.
const MaxMetadataSize = 64 << 20

// Snapshot types, as _metadata's "type".
const (
	TypeCheckpoint         = "CHECKPOINT"
	TypeSavepoint          = "SAVEPOINT"
	TypeSavepointSuspend   = "SAVEPOINT_SUSPEND"
	TypeSavepointTerminate = "SAVEPOINT_TERMINATE"
)

// Sealing modes, as _metadata's "sealing" (internal/security/sealed's
// Algorithm and Integrity).
const (
	SealingAESGCM = "aes-256-gcm"
	SealingSHA256 = "sha-256"
)

// Keyed state formats, as KeyedHandle.Format.
const (
	FormatKGStream = "kg-stream/1" // canonical: hashmap checkpoints, every savepoint
	FormatPebble   = "pebble/1"    // pebble's native files
)

// List redistribution modes, as ListInfo.Mode.
const (
	ModeSplit = "split"
	ModeUnion = "union"
)

// State kinds, as StateInfo.Kind.
var stateKinds = []string{"value", "list", "map", "reducing", "aggregating", "timers"}

// Bounds of what one _metadata may hold, beyond its size: each is far above
// what a job has, and keeps a hostile document from costing much to check.
const (
	maxOperators = 4096
	maxNameLen   = 256
	maxStates    = 1024
	maxLists     = 1024
	maxFiles     = 1 << 16
)

// MaxListEntries bounds the entries of all list states in one subtask's
// operator state file. Operator state is small (source positions, a sink's
// pending files); the bound keeps a forged file of empty entries from
// costing a reader far more memory than its size (a slice header each).
// The writer refuses more, so a snapshot taken can be restored.
const MaxListEntries = 1 << 22

// Metadata is a completed checkpoint or savepoint: the _metadata file.
type Metadata struct {
	Format         string          `json:"format"`
	JobID          string          `json:"job-id"`
	JobName        string          `json:"job-name"`
	CheckpointID   int64           `json:"checkpoint-id"`
	Type           string          `json:"type"`
	Triggered      int64           `json:"trigger-timestamp"`
	Completed      int64           `json:"completion-timestamp"`
	MaxParallelism int             `json:"max-parallelism"`
	Sealing        string          `json:"sealing"`
	KeyID          string          `json:"key-id,omitempty"`
	Finished       bool            `json:"finished"` // every task had ended its input
	Operators      []OperatorState `json:"operators"`
}

// OperatorState is the state of one operator (by name, its uid).
type OperatorState struct {
	Name        string         `json:"name"`
	Type        string         `json:"type"`
	Parallelism int            `json:"parallelism"`
	Subtasks    []SubtaskState `json:"subtasks"` // index: subtask
}

// SubtaskState is one subtask's snapshot; also the payload of its
// acknowledgement.
type SubtaskState struct {
	Finished bool         `json:"finished,omitempty"`
	Keyed    *KeyedHandle `json:"keyed,omitempty"`
	Operator *ListsHandle `json:"operator,omitempty"`
}

// KeyedHandle is a subtask's keyed state: its key-group range and files.
type KeyedHandle struct {
	Format    string         `json:"format"`
	KeyGroups keygroup.Range `json:"key-groups"`
	// Offsets are, for kg-stream, the start of each key group of the range
	// in the file, so a rescaled restore reads only its key groups.
	Offsets []int64     `json:"offsets,omitempty"`
	States  []StateInfo `json:"states"`
	Files   []FileRef   `json:"files"`
}

// StateInfo is a registered keyed state.
type StateInfo struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// ListsHandle is a subtask's operator (non-keyed) list states.
type ListsHandle struct {
	File  FileRef    `json:"file"`
	Lists []ListInfo `json:"lists"`
}

// ListInfo is one list state of a ListsHandle.
type ListInfo struct {
	Name  string `json:"name"`
	Mode  string `json:"mode"` // "split" or "union"
	Count int64  `json:"count"`
}

// FileRef is a state file, by path relative to the snapshot's root. Size
// is its size on disk (sealed, when sealed); KeyedHandle.Offsets are
// offsets in its plaintext.
type FileRef struct {
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256,omitempty"`     // without a key
	SealedFor int64  `json:"sealed-for,omitempty"` // shared files: the checkpoint that wrote them
}

// BindingID is the checkpoint id a file is sealed for: its own checkpoint,
// or for a shared file the checkpoint that wrote it.
func (f FileRef) BindingID(checkpointID int64) int64 {
	if f.SealedFor > 0 {
		return f.SealedFor
	}
	return checkpointID
}

// IsSavepoint reports whether the snapshot is a savepoint of any kind.
func (m *Metadata) IsSavepoint() bool { return m.Type != TypeCheckpoint }

// Operator returns the state of the operator named name, or nil.
func (m *Metadata) Operator(name string) *OperatorState {
	for i := range m.Operators {
		if m.Operators[i].Name == name {
			return &m.Operators[i]
		}
	}
	return nil
}

// Marshal validates m and encodes it as _metadata's JSON.
func Marshal(m *Metadata) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", MetadataName, err)
	}
	if len(b) > MaxMetadataSize {
		return nil, fmt.Errorf("encode %s: %d bytes, more than %d", MetadataName, len(b), MaxMetadataSize)
	}
	return append(b, '\n'), nil
}

// Unmarshal decodes and validates a _metadata document (already opened:
// unsealed or its digest line checked). Unknown fields, trailing data, a
// document over MaxMetadataSize and anything Validate refuses are errors.
func Unmarshal(b []byte) (*Metadata, error) {
	if len(b) > MaxMetadataSize {
		return nil, fmt.Errorf("%s: %d bytes, more than %d: not a sluice checkpoint", MetadataName, len(b), MaxMetadataSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Metadata
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", MetadataName, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: data after the document", MetadataName)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks everything a reader relies on: ids, enumerations,
// bounds, that each operator has one entry per subtask, that key-group
// ranges are those of their subtask, and that every path is relative and
// where its snapshot type puts it.
func (m *Metadata) Validate() error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s of checkpoint %d: %s", MetadataName, m.CheckpointID, fmt.Sprintf(format, a...))
	}
	if m.Format != Format {
		return fmt.Errorf("%s: format %q, want %q", MetadataName, m.Format, Format)
	}
	if m.CheckpointID <= 0 {
		return fmt.Errorf("%s: checkpoint-id %d: want > 0", MetadataName, m.CheckpointID)
	}
	if err := CheckJobID(m.JobID); err != nil {
		return fail("job-id: %v", err)
	}
	if len(m.JobName) > maxNameLen {
		return fail("job-name of %d bytes: at most %d", len(m.JobName), maxNameLen)
	}
	switch m.Type {
	case TypeCheckpoint, TypeSavepoint, TypeSavepointSuspend, TypeSavepointTerminate:
	default:
		return fail("type %q: want %s, %s, %s or %s", m.Type, TypeCheckpoint, TypeSavepoint, TypeSavepointSuspend, TypeSavepointTerminate)
	}
	if m.Triggered <= 0 || m.Completed < m.Triggered {
		return fail("timestamps: triggered %d, completed %d", m.Triggered, m.Completed)
	}
	if err := keygroup.CheckMaxParallelism(m.MaxParallelism); err != nil {
		return fail("max-parallelism: %v", err)
	}
	switch m.Sealing {
	case SealingAESGCM:
		if b, err := hex.DecodeString(m.KeyID); err != nil || len(b) != 8 {
			return fail("key-id %q: want 16 hex digits with sealing %s", m.KeyID, m.Sealing)
		}
	case SealingSHA256:
		if m.KeyID != "" {
			return fail("key-id %q with sealing %s", m.KeyID, m.Sealing)
		}
	default:
		return fail("sealing %q: want %s or %s", m.Sealing, SealingAESGCM, SealingSHA256)
	}
	if len(m.Operators) > maxOperators {
		return fail("%d operators: at most %d", len(m.Operators), maxOperators)
	}
	names := map[string]bool{}
	files := map[string]bool{}
	for i := range m.Operators {
		o := &m.Operators[i]
		if o.Name == "" || len(o.Name) > maxNameLen || o.Type == "" || len(o.Type) > maxNameLen {
			return fail("operator %d: name %q and type %q must be 1..%d bytes", i, o.Name, o.Type, maxNameLen)
		}
		if names[o.Name] {
			return fail("operator %q appears twice", o.Name)
		}
		names[o.Name] = true
		if o.Parallelism < 1 || o.Parallelism > m.MaxParallelism {
			return fail("operator %q: parallelism %d outside 1..%d (max-parallelism)", o.Name, o.Parallelism, m.MaxParallelism)
		}
		if len(o.Subtasks) != o.Parallelism {
			return fail("operator %q: %d subtasks for parallelism %d", o.Name, len(o.Subtasks), o.Parallelism)
		}
		modes := map[string]string{}
		for s := range o.Subtasks {
			if err := m.checkSubtask(o, s, files); err != nil {
				return fail("operator %q subtask %d: %v", o.Name, s, err)
			}
			if l := o.Subtasks[s].Operator; l != nil {
				for _, li := range l.Lists {
					if mode, ok := modes[li.Name]; ok && mode != li.Mode {
						return fail("operator %q: list state %q is %s in one subtask and %s in subtask %d", o.Name, li.Name, mode, li.Mode, s)
					}
					modes[li.Name] = li.Mode
				}
			}
		}
	}
	return nil
}

func (m *Metadata) checkSubtask(o *OperatorState, s int, files map[string]bool) error {
	st := &o.Subtasks[s]
	if k := st.Keyed; k != nil {
		if want := keygroup.RangeOf(s, o.Parallelism, m.MaxParallelism); k.KeyGroups != want {
			return fmt.Errorf("key-groups %v, want %v for subtask %d of %d with max-parallelism %d", k.KeyGroups, want, s, o.Parallelism, m.MaxParallelism)
		}
		switch k.Format {
		case FormatKGStream:
			if len(k.Files) != 1 {
				return fmt.Errorf("%s: %d files, want 1", k.Format, len(k.Files))
			}
			if len(k.Offsets) != k.KeyGroups.Len() {
				return fmt.Errorf("%s: %d offsets for %d key groups", k.Format, len(k.Offsets), k.KeyGroups.Len())
			}
			for i, off := range k.Offsets {
				if off < 0 || off > k.Files[0].Size || (i > 0 && off < k.Offsets[i-1]) {
					return fmt.Errorf("%s: offset %d of key group %d outside the file or out of order", k.Format, off, k.KeyGroups.First+i)
				}
			}
		case FormatPebble:
			if m.IsSavepoint() {
				return fmt.Errorf("%s in a savepoint: savepoints are written in %s", k.Format, FormatKGStream)
			}
			if len(k.Files) == 0 || len(k.Offsets) != 0 {
				return fmt.Errorf("%s: %d files and %d offsets, want files and no offsets", k.Format, len(k.Files), len(k.Offsets))
			}
		default:
			return fmt.Errorf("keyed format %q: want %s or %s", k.Format, FormatKGStream, FormatPebble)
		}
		if len(k.States) > maxStates || len(k.Files) > maxFiles {
			return fmt.Errorf("%d states and %d files: at most %d and %d", len(k.States), len(k.Files), maxStates, maxFiles)
		}
		seen := map[string]bool{}
		for _, si := range k.States {
			if si.Name == "" || len(si.Name) > maxNameLen || seen[si.Name] {
				return fmt.Errorf("state name %q: empty, too long or repeated", si.Name)
			}
			seen[si.Name] = true
			if !slices.Contains(stateKinds, si.Kind) {
				return fmt.Errorf("state %q: kind %q, want one of %s", si.Name, si.Kind, strings.Join(stateKinds, ", "))
			}
		}
		for _, f := range k.Files {
			if err := m.checkFile(f, k.Format == FormatPebble, files); err != nil {
				return err
			}
		}
	}
	if l := st.Operator; l != nil {
		if err := m.checkFile(l.File, false, files); err != nil {
			return err
		}
		if len(l.Lists) > maxLists {
			return fmt.Errorf("%d lists: at most %d", len(l.Lists), maxLists)
		}
		seen := map[string]bool{}
		var total int64
		for _, li := range l.Lists {
			if li.Name == "" || len(li.Name) > maxNameLen || seen[li.Name] {
				return fmt.Errorf("list name %q: empty, too long or repeated", li.Name)
			}
			seen[li.Name] = true
			if li.Mode != ModeSplit && li.Mode != ModeUnion {
				return fmt.Errorf("list %q: mode %q, want %s or %s", li.Name, li.Mode, ModeSplit, ModeUnion)
			}
			if li.Count < 0 || li.Count > MaxListEntries-total {
				return fmt.Errorf("list %q: count %d: want 0 or more, at most %d entries in all lists of a subtask", li.Name, li.Count, MaxListEntries)
			}
			total += li.Count
		}
	}
	return nil
}

// checkFile checks a file reference: its path for the snapshot's type, its
// digest for the sealing, and sealed-for only on shared files. A file
// referenced twice in one snapshot is refused: every file, shared ones
// included, is written by one subtask.
func (m *Metadata) checkFile(f FileRef, mayShare bool, files map[string]bool) error {
	if err := CheckSnapshotPath(f.Path, m.CheckpointID, m.IsSavepoint()); err != nil {
		return err
	}
	if files[f.Path] {
		return fmt.Errorf("file %s referenced twice", f.Path)
	}
	files[f.Path] = true
	if f.Size < 0 {
		return fmt.Errorf("file %s: size %d", f.Path, f.Size)
	}
	shared := strings.HasPrefix(f.Path, SharedDir+"/")
	if shared && !mayShare {
		return fmt.Errorf("file %s: only %s state has shared files", f.Path, FormatPebble)
	}
	switch {
	case shared && (f.SealedFor <= 0 || f.SealedFor > m.CheckpointID):
		return fmt.Errorf("file %s: sealed-for %d, want the id of the checkpoint (<= %d) that wrote it", f.Path, f.SealedFor, m.CheckpointID)
	case !shared && f.SealedFor != 0:
		return fmt.Errorf("file %s: sealed-for is for shared files only", f.Path)
	}
	if m.Sealing == SealingSHA256 {
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != 32 {
			return fmt.Errorf("file %s: sha256 %q: want 64 hex digits without a sealing key", f.Path, f.SHA256)
		}
	} else if f.SHA256 != "" {
		return fmt.Errorf("file %s: sha256 given for a sealed file", f.Path)
	}
	return nil
}
