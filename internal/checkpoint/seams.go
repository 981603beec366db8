package checkpoint

import (
	"context"
	"io"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// This file holds the seams between the parts of the engine that write and
// read snapshots: the task runtime (internal/dataflow), the state backends
// (internal/state/...), the storage (this package) and the TaskManager that
// connects them. Each side is built and tested against these types alone.

// TypeName is t as _metadata's "type".
func TypeName(t event.SnapshotType) string {
	switch t {
	case event.Savepoint:
		return TypeSavepoint
	case event.SavepointSuspend:
		return TypeSavepointSuspend
	case event.SavepointTerminate:
		return TypeSavepointTerminate
	}
	return TypeCheckpoint
}

// Info identifies a snapshot being taken.
type Info struct {
	ID        int64
	Timestamp time.Time
	Type      event.SnapshotType
}

// IsSavepoint reports whether the snapshot is a savepoint of any kind.
func (i Info) IsSavepoint() bool { return i.Type != event.Checkpoint }

// SnapshotFiles is where one subtask writes the files of one snapshot: the
// checkpoint's chk-N directory (and the job's shared directory), or a
// savepoint's directory. It seals every file with the cluster key when one
// is configured, and otherwise hashes it, so FileWriter.Commit returns a
// FileRef ready for _metadata. Names are slash-separated relative paths
// such as "3-0-keyed" or "3-0-pebble/MANIFEST-000005"; the implementation
// refuses anything else (CheckRelPath).
type SnapshotFiles interface {
	// Create creates the private file name of this snapshot (0600,
	// exclusive; parent directories 0700).
	Create(name string) (FileWriter, error)
	// SharedAllowed reports whether CreateShared may be used: only for
	// checkpoints (a savepoint is self-contained).
	SharedAllowed() bool
	// CreateShared creates shared/<name>, a file later checkpoints of the
	// same job may reference (pebble incremental SSTs). Its FileRef has
	// SealedFor set to this snapshot's id.
	CreateShared(name string) (FileWriter, error)
}

// FileWriter writes one snapshot file.
type FileWriter interface {
	io.Writer
	// Commit flushes, seals or hashes, fsyncs and closes the file, and
	// returns its reference (path relative to the snapshot's root, size,
	// SHA-256 when unsealed, SealedFor for shared files).
	Commit() (FileRef, error)
	// Abort closes and removes the file; it is a no-op after Commit.
	Abort()
}

// RestoreFiles opens the files of the snapshot a subtask restores from,
// verified: a sealed file is authenticated chunk by chunk against its
// binding (job, checkpoint, path), an unsealed one against the SHA-256 in
// its FileRef (the whole file is checked before EOF is returned). Errors
// name the file (its path relative to the root).
type RestoreFiles interface {
	// CheckpointID is the id of the snapshot restored from.
	CheckpointID() int64
	// Open opens ref. When the returned reader is also an io.ReadSeeker,
	// callers may seek to read only part of it (sealed files allow it;
	// hashed files are read whole to be checked).
	Open(ctx context.Context, ref FileRef) (io.ReadCloser, error)
}
