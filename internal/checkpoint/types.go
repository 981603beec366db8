package checkpoint

import (
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// Mode is execution.checkpointing.mode.
type Mode int

// Checkpointing modes.
const (
	ExactlyOnce Mode = iota // barriers are aligned
	AtLeastOnce             // barriers are counted, not aligned
)

func (m Mode) String() string {
	if m == AtLeastOnce {
		return "AT_LEAST_ONCE"
	}
	return "EXACTLY_ONCE"
}

// Retention is execution.checkpointing.externalized-checkpoint-retention:
// what happens to a job's checkpoints when it is canceled. A FAILED job
// keeps them, a FINISHED one deletes them, whatever it says.
type Retention int

// Retention policies.
const (
	DeleteOnCancellation Retention = iota
	RetainOnCancellation
)

func (r Retention) String() string {
	if r == RetainOnCancellation {
		return "RETAIN_ON_CANCELLATION"
	}
	return "DELETE_ON_CANCELLATION"
}

// JobState is how a job ended, for Coordinator.Close's retention.
type JobState string

// Final job states.
const (
	JobFinished JobState = "FINISHED"
	JobCanceled JobState = "CANCELED"
	JobFailed   JobState = "FAILED"
)

// TaskRef names one subtask of one attempt and the TaskManager it was
// deployed to.
type TaskRef struct {
	TaskManagerID string
	Attempt       int
	Vertex        int
	Subtask       int
}

func (t TaskRef) String() string {
	return fmt.Sprintf("vertex %d subtask %d (attempt %d, taskmanager %s)", t.Vertex, t.Subtask, t.Attempt, t.TaskManagerID)
}

type subtaskKey struct{ vertex, subtask int }

func (t TaskRef) key() subtaskKey { return subtaskKey{t.Vertex, t.Subtask} }

// AckMetrics are a subtask's numbers for one snapshot.
type AckMetrics struct {
	SyncDuration      time.Duration
	AsyncDuration     time.Duration
	AlignmentDuration time.Duration
	StateSize         int64 // bytes the snapshot references
	CheckpointedSize  int64 // bytes written for it (incremental: new files only)
}

// Ack is a subtask's acknowledgement of a snapshot: the state of each
// operator of its chain that has state, by operator name.
type Ack struct {
	Task         TaskRef
	CheckpointID int64
	Operators    map[string]SubtaskState
	// Finished: the task had ended its input (every operator of the
	// chain is recorded finished).
	Finished bool
	Metrics  AckMetrics
}

// Decline is a subtask's refusal of a snapshot it could not take.
type Decline struct {
	Task         TaskRef
	CheckpointID int64
	Reason       string
}

// OperatorInfo is an operator of the job as _metadata records it: by
// name, with its type and parallelism, and the vertex (chain) running it.
type OperatorInfo struct {
	Name        string
	Type        string
	Vertex      int
	Parallelism int
}

// SavepointRequest asks for a savepoint.
type SavepointRequest struct {
	// Target is an absolute directory; the savepoint's directory is
	// created inside it.
	Target string
	// Type is Savepoint, SavepointSuspend (stop, cancel-job) or
	// SavepointTerminate (stop --drain).
	Type event.SnapshotType
	// Cancel: cancel-job, the job ends CANCELED rather than FINISHED.
	Cancel bool
}

// Operation is the outcome of a savepoint request as REST reports it:
// Flink's status id is IN_PROGRESS until Done, and a done operation has a
// Location or a Failure.
type Operation struct {
	Done     bool
	Location string // "file:/srv/sp/savepoint-5d1f2a-…"
	Failure  string
	// Request is what was asked (Gateway.Stopped uses Cancel).
	Request SavepointRequest
}
