package dataflow

import (
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
)

// CheckpointMode is execution.checkpointing.mode.
type CheckpointMode uint8

const (
	// ExactlyOnce aligns barriers: a channel that delivered barrier N is blocked until every
	// live channel has, so the snapshot holds exactly the records before the barrier.
	ExactlyOnce CheckpointMode = iota
	// AtLeastOnce counts barriers without blocking: records that overtook a barrier are in
	// the snapshot and replay after recovery (duplicates, never loss).
	AtLeastOnce
)

func (m CheckpointMode) String() string {
	if m == AtLeastOnce {
		return "AT_LEAST_ONCE"
	}
	return "EXACTLY_ONCE"
}

// CheckpointInfo identifies the snapshot an operator is asked to take.
type CheckpointInfo = checkpoint.Info

// TaskCheckpointing is what a task needs to take part in checkpoints, as the TaskManager
// wires it. Triggers (for source tasks) and outcomes arrive through TaskIO.Mailbox
// (MailTrigger, MailComplete, MailAborted); a TaskIO with Checkpoints set and no Mailbox gets
// a private one, which only barriers then reach.
//
// Ack, Decline and EndOfData are called from the task's goroutine or from the goroutines the
// task owns for the asynchronous parts of its snapshots, possibly concurrently (an Ack of
// checkpoint N while the task declines N+1): they must be safe for concurrent use and must
// not block for long (the TaskManager turns them into RPCs). None of them is called after
// RunSubtask returned.
type TaskCheckpointing struct {
	Mode CheckpointMode
	// Periodic is set when execution.checkpointing.interval is: operators then see
	// RuntimeContext.Checkpointing, a file sink commits at checkpoints, not at the end, and
	// a finished task reports EndOfData and stays until a checkpoint it took after
	// finishing completes. Without it (savepoints only) a task ends as it does without
	// checkpointing.
	Periodic bool
	// Files says where this subtask writes the files of a snapshot (chk-N/ or a savepoint's
	// directory). The task names its files checkpoint.StateFile(index of the operator in the
	// spec, subtask, kind) with kind checkpoint.KindKeyed or checkpoint.KindOperator.
	Files func(cp checkpoint.Info) (checkpoint.SnapshotFiles, error)
	// Restore is what the subtask restores, from checkpoint.Assign per operator of its
	// chain; RestoreFiles opens its files, verified. Nil Restore: a fresh start.
	Restore      *checkpoint.TaskRestore
	RestoreFiles checkpoint.RestoreFiles
	// SameJob: the snapshot restored from is one of this job's checkpoints, so an
	// incremental backend may reference its shared files rather than upload them again.
	SameJob bool
	// Ack acknowledges a snapshot with the state of every operator of the chain, by name.
	Ack func(cp checkpoint.Info, ops map[string]checkpoint.SubtaskState, m CheckpointMetrics)
	// Decline says the subtask cannot complete checkpoint id, and why.
	Decline func(id int64, reason string)
	// EndOfData reports that a source subtask reached the end of its input (the coordinator
	// then triggers the final checkpoint). Nil: not reported.
	EndOfData func()
}

// CheckpointMetrics are a subtask's measurements of one snapshot.
type CheckpointMetrics struct {
	Alignment time.Duration // first barrier to last (exactly once); 0 for sources
	Sync      time.Duration // synchronous part, in the task goroutine
	Async     time.Duration // asynchronous part, concurrent with processing
	Size      int64         // bytes the snapshot references (as committed: sealed or plain)
	// Written is the bytes this checkpoint wrote: Size less the shared
	// files an incremental checkpoint references from earlier ones.
	Written int64
}
