package state

import "fmt"

// Redistribution says how the entries of an operator's list state move when a job is
// restored at another parallelism (docs/architecture.md §5.4).
type Redistribution uint8

const (
	// Split: the lists of all old subtasks are concatenated in subtask order and new
	// subtask i gets entries [i*n/p, (i+1)*n/p). Sources keep one entry per split, so
	// splits move whole.
	Split Redistribution = 1
	// Union: every subtask gets every entry (a sink's pending transactions).
	Union Redistribution = 2
)

// String is the mode as _metadata writes it ("split", "union").
func (r Redistribution) String() string {
	switch r {
	case Split:
		return "split"
	case Union:
		return "union"
	}
	return fmt.Sprintf("Redistribution(%d)", uint8(r))
}

// ParseRedistribution is the inverse of String.
func ParseRedistribution(s string) (Redistribution, error) {
	switch s {
	case "split":
		return Split, nil
	case "union":
		return Union, nil
	}
	return 0, fmt.Errorf("unknown list state mode %q (want split or union)", s)
}

// ListState is a list of opaque entries of an operator's non-keyed state: a source's
// positions, a sink's pending transactions. It is owned by the task goroutine; the task
// copies the entries at the barrier, so an operator updates it in SnapshotState.
type ListState struct {
	name    string
	mode    Redistribution
	entries [][]byte
}

// NewListState returns a list state holding entries (restored, or nil).
func NewListState(name string, mode Redistribution, entries [][]byte) *ListState {
	return &ListState{name: name, mode: mode, entries: entries}
}

// Name is the list's name in snapshots.
func (l *ListState) Name() string { return l.name }

// Mode is how the list is redistributed on rescale.
func (l *ListState) Mode() Redistribution { return l.mode }

// Entries are the restored entries, or those of the last Update. They must not be modified.
func (l *ListState) Entries() [][]byte { return l.entries }

// Update replaces the entries. The list keeps entries and its byte slices: the caller must
// not modify them afterwards (a snapshot may still be writing them).
func (l *ListState) Update(entries [][]byte) { l.entries = entries }
