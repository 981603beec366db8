// Package state is the keyed state of an operator subtask: the byte-level
// Backend that a backend package implements (hashmap in memory, pebble on
// disk), the typed states operators use on top of it (Value, List, Map,
// Reducing, Aggregating), their codecs, and the canonical key-group stream
// in which keyed state is snapshotted and restored
// (docs/architecture.md, "Engine", §5).
//
// State is scoped to the backend's current key (SetCurrentKey) and to a
// namespace (windows; nil when unused). Keys belong to key groups; a backend
// holds one contiguous range of them, so that a snapshot taken at one
// parallelism restores at another by reading whole key groups.
package state

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
)

// Kind is what a state holds; a restored state keeps its kind.
type Kind uint8

// The kinds of keyed state. Their numbers are written in snapshots.
const (
	KindValue Kind = iota + 1
	KindList
	KindMap
	KindReducing
	KindAggregating
	KindTimers
)

var kindNames = [...]string{"", "value", "list", "map", "reducing", "aggregating", "timers"}

// String returns the kind's name as written in _metadata ("value", "map", ...).
func (k Kind) String() string {
	if k >= KindValue && k <= KindTimers {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return k >= KindValue && k <= KindTimers }

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for k := KindValue; k <= KindTimers; k++ {
		if kindNames[k] == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown state kind %q (want value, list, map, reducing, aggregating or timers)", s)
}

// valueLike reports whether a kind stores one value per key and namespace
// (no user keys): everything but maps. A list's value is its encoded
// elements (AppendElement).
func (k Kind) valueLike() bool { return k != KindMap }

// ID identifies a registered state within one backend. IDs start at 1:
// 0 ends a key group in the key-group stream.
type ID uint16

// MaxStates is the most states one backend (and one snapshot) can hold.
const MaxStates = 1<<16 - 1

// StateInfo describes one state of a backend or snapshot.
type StateInfo struct {
	ID   ID
	Name string
	Kind Kind
}

// KeyGroupRange is a contiguous, inclusive range of key groups.
//
// TODO(keygroup): replace with keygroup.Range once internal/state/keygroup
// lands; the fields are the same, so keygroup.Range(r) converts.
type KeyGroupRange struct{ First, Last int }

// Contains reports whether kg is in r.
func (r KeyGroupRange) Contains(kg int) bool { return kg >= r.First && kg <= r.Last }

// Len is the number of key groups in r (0 for an invalid range).
func (r KeyGroupRange) Len() int {
	if r.Last < r.First {
		return 0
	}
	return r.Last - r.First + 1
}

// Intersect is the key groups in both r and o; ok is false when there are none.
func (r KeyGroupRange) Intersect(o KeyGroupRange) (KeyGroupRange, bool) {
	i := KeyGroupRange{First: max(r.First, o.First), Last: min(r.Last, o.Last)}
	return i, i.First <= i.Last
}

func (r KeyGroupRange) String() string { return fmt.Sprintf("[%d, %d]", r.First, r.Last) }

// MaxKeyGroups bounds key-group numbers (pipeline.max-parallelism is at most 32768).
const MaxKeyGroups = 32768

func (r KeyGroupRange) check() error {
	if r.First < 0 || r.Last >= MaxKeyGroups || r.First > r.Last {
		return fmt.Errorf("key-group range %s is not within [0, %d)", r, MaxKeyGroups)
	}
	return nil
}

// SnapshotInfo identifies a snapshot being taken.
//
// TODO(checkpoint): replace with checkpoint.Info once internal/checkpoint lands.
type SnapshotInfo struct {
	ID        int64
	Timestamp time.Time
}

// Backend is the keyed state of one operator subtask for one key-group range.
// It is owned by the task goroutine; only a Snapshot's Write runs elsewhere.
//
// Byte slices passed in are not retained (the backend copies what it keeps);
// byte slices handed out are read-only and valid until the next call.
type Backend interface {
	// Register declares a state. Registering a name again with the same kind
	// returns the same ID; a name registered, or restored, with another kind
	// is an error naming it, so restored state is read only as what it was
	// written as.
	Register(name string, kind Kind) (ID, error)
	// SetCurrentKey scopes the following calls to key, whose key group is
	// keyGroup (computed by the caller from the key's hash). A key group
	// outside the backend's range makes the following accesses fail.
	SetCurrentKey(key []byte, keyGroup int)
	// CurrentKey is the key set last.
	CurrentKey() []byte
	// Get reads the value of the current key in namespace ns: the value for
	// value-like states (userKey nil), the encoded elements for a list
	// (see Elements), the value under userKey for a map.
	Get(id ID, ns, userKey []byte) (value []byte, ok bool, err error)
	// Put sets a value (userKey nil except for maps).
	Put(id ID, ns, userKey, value []byte) error
	// Append adds one element to a list state.
	Append(id ID, ns, element []byte) error
	// Delete removes a value (userKey nil except for maps, where it removes
	// one user key).
	Delete(id ID, ns, userKey []byte) error
	// Clear removes everything of the current key in ns (all user keys of a map).
	Clear(id ID, ns []byte) error
	// Iterate visits the current key's user keys and values in ns: a map's
	// entries, a list's elements (userKey nil), a value (userKey nil). fn
	// must not modify the state.
	Iterate(id ID, ns []byte, fn func(userKey, value []byte) error) error
	// Keys visits, once each, every key of the range having state id, with
	// its key group. key is valid only during fn; fn must not modify the state.
	Keys(id ID, fn func(key []byte, keyGroup int) error) error
	// Snapshot is the synchronous part of a checkpoint: cheap, and a
	// consistent point-in-time view whatever the task does afterwards.
	Snapshot(info SnapshotInfo) (Snapshot, error)
	// NotifyCheckpointComplete tells the backend that checkpoint id completed
	// (pebble incremental: the new base).
	NotifyCheckpointComplete(id int64)
	Close() error
}

// Snapshot is a backend's state at one checkpoint.
type Snapshot interface {
	// Write persists the snapshot to w as a key-group stream; it runs off the
	// task goroutine. The handle says where each key group starts.
	Write(ctx context.Context, w io.Writer) (*StreamHandle, error)
	// Release frees what the snapshot holds; it may be called without Write
	// and after it.
	Release()
}

// Restore is one keyed snapshot a backend restores from, in one of two
// forms:
//
//   - a key-group stream (Handle.Format StreamFormat: hashmap checkpoints,
//     every savepoint): Name identifies the file in errors (its path
//     relative to the checkpoint's root); Open returns it from its
//     beginning, verified by the caller (seal or hash). If the reader is
//     also an io.Seeker, only the key groups wanted are read. Every backend
//     reads it.
//   - a backend's native files (Native set, Native.Format e.g.
//     checkpoint.FormatPebble): Files opens each of Native.Files, verified.
//     Only the backend that wrote the format reads it; another refuses it
//     naming the format and state.backend.type.
//
// RestoreOf builds either from a _metadata handle.
type Restore struct {
	Name   string
	Handle *StreamHandle
	Open   func(ctx context.Context) (io.ReadCloser, error)

	Native *checkpoint.KeyedHandle
	Files  checkpoint.RestoreFiles
	// SameJob says the snapshot is a checkpoint of the job being restored:
	// its shared files stay where they are, so an incremental backend may
	// reference them from its own checkpoints rather than upload them again.
	SameJob bool
}

// Format is the snapshot's format (StreamFormat, checkpoint.FormatPebble, ...).
func (r Restore) Format() string {
	switch {
	case r.Native != nil:
		return r.Native.Format
	case r.Handle != nil:
		return r.Handle.Format
	}
	return ""
}

// KeyGroups is the key-group range the snapshot holds.
func (r Restore) KeyGroups() KeyGroupRange {
	switch {
	case r.Native != nil:
		return KeyGroupRange(r.Native.KeyGroups)
	case r.Handle != nil:
		return r.Handle.KeyGroups
	}
	return KeyGroupRange{First: 0, Last: -1}
}

// FileSnapshot is a Snapshot that can also be written as its backend's
// native files (pebble: "pebble/1"), the cheap form of a checkpoint. A
// savepoint is always written with Write (the canonical key-group stream).
type FileSnapshot interface {
	Snapshot
	// WriteFiles persists the snapshot as files of dst, named
	// "<prefix>-pebble/<file>" (private to this snapshot) or, when the
	// backend is incremental, shared files of dst it creates or references
	// from an earlier completed checkpoint. It runs off the task goroutine
	// and returns the handle for _metadata, with KeyGroups, States and
	// every file (shared ones with their SealedFor). It fails when
	// dst.SharedAllowed() is false: savepoints are written with Write.
	WriteFiles(ctx context.Context, dst checkpoint.SnapshotFiles, prefix string) (*checkpoint.KeyedHandle, error)
}

// Factory creates backends of one kind.
type Factory interface {
	// Name is the backend's name in state.backend.type ("hashmap", "pebble").
	Name() string
	// New creates the backend of one operator subtask, restored from
	// restore (nil: empty). The snapshots may cover more key groups than
	// cfg.KeyGroups (rescaling): only those in cfg.KeyGroups are read.
	New(ctx context.Context, cfg Config, restore []Restore) (Backend, error)
}

// Config is what a backend needs to know about its operator subtask.
type Config struct {
	Job, Operator  string
	Subtask        int
	KeyGroups      KeyGroupRange
	MaxParallelism int
	WorkDir        string // pebble: private directory, removed at Close
	Incremental    bool   // state.backend.incremental
	Logger         *slog.Logger
	// KeyGroupOf, when set, checks each restored key against the key group
	// it was filed under, so a snapshot mixed up with another job's (or
	// another max parallelism's) is refused rather than silently misrouted.
	KeyGroupOf func(key []byte) int
}

// Check validates c, naming what is wrong.
func (c Config) Check() error {
	if err := c.KeyGroups.check(); err != nil {
		return fmt.Errorf("state backend of %s subtask %d: %w", c.Operator, c.Subtask, err)
	}
	if c.MaxParallelism > 0 && c.KeyGroups.Last >= c.MaxParallelism {
		return fmt.Errorf("state backend of %s subtask %d: key groups %s exceed pipeline.max-parallelism %d",
			c.Operator, c.Subtask, c.KeyGroups, c.MaxParallelism)
	}
	return nil
}

// CheckRegister validates a backend's Register(name, kind) of an operator's state: the name
// and the kind, and, when a state of that name is known already (prev; restored when it came
// from a snapshot and was not registered in this run), that the kinds agree, so restored state
// is read only as what it was written as.
func CheckRegister(operator, name string, kind Kind, prev *StateInfo, restored bool) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("operator %s: state name %q must have 1 to %d bytes", operator, name, MaxNameLen)
	}
	if !kind.Valid() {
		return fmt.Errorf("operator %s: state %q: invalid kind %d", operator, name, kind)
	}
	if prev != nil && prev.Kind != kind {
		how := "registered"
		if restored {
			how = "restored"
		}
		return fmt.Errorf("operator %s: state %q was %s as %s state and cannot be registered as %s state: give the new state another name",
			operator, name, how, prev.Kind, kind)
	}
	return nil
}
