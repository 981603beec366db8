package taskmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// Checkpoint control (docs/architecture.md, "Engine", §6.5 and §6.7): the
// JobManager's coordinator triggers barriers at the source tasks and tells
// every task the outcome; both reach a task through its mailbox, so only the
// task's goroutine touches its operators. Tasks acknowledge and decline
// through the calls below.

// TriggerCheckpoint posts a barrier to the listed source tasks of an attempt.
func (s *rpcServer) TriggerCheckpoint(ctx context.Context, req *controlpb.TriggerCheckpointRequest) (*controlpb.Ack, error) {
	if req.CheckpointId <= 0 {
		return nil, fmt.Errorf("trigger checkpoint: checkpoint id %d is not positive", req.CheckpointId)
	}
	typ := event.SnapshotType(req.Type)
	if typ > event.SavepointTerminate {
		return nil, fmt.Errorf("trigger checkpoint %d: unknown snapshot type %d", req.CheckpointId, req.Type)
	}
	jr := s.tm.jobRun(req.JobId, int(req.Attempt))
	if jr == nil {
		return nil, fmt.Errorf("trigger checkpoint %d: job %s attempt %d does not run here", req.CheckpointId, req.JobId, req.Attempt)
	}
	b := event.Barrier{ID: req.CheckpointId, Timestamp: req.TimestampMs, Type: typ}
	var missing []string
	for _, src := range req.Sources {
		t := jr.task(int(src.Vertex), int(src.Subtask))
		if t == nil {
			missing = append(missing, fmt.Sprintf("%d/%d", src.Vertex, src.Subtask))
			continue
		}
		t.mail.Post(dataflow.Mail{Kind: dataflow.MailTrigger, Barrier: b, Target: req.Target})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("trigger checkpoint %d: source tasks %v of job %s attempt %d do not run here", req.CheckpointId, missing, req.JobId, req.Attempt)
	}
	return &controlpb.Ack{}, nil
}

// NotifyCheckpoint tells every task of an attempt that a checkpoint completed or was aborted.
func (s *rpcServer) NotifyCheckpoint(ctx context.Context, req *controlpb.NotifyCheckpointRequest) (*controlpb.Ack, error) {
	jr := s.tm.jobRun(req.JobId, int(req.Attempt))
	if jr == nil {
		return &controlpb.Ack{}, nil // its tasks ended: nothing to tell
	}
	kind := dataflow.MailAborted
	if req.Completed {
		kind = dataflow.MailComplete
	}
	for _, t := range jr.taskList() {
		t.mail.Post(dataflow.Mail{Kind: kind, ID: req.CheckpointId})
	}
	return &controlpb.Ack{}, nil
}

// jobRun returns the run of one attempt of a job on this TaskManager, or nil.
func (tm *TaskManager) jobRun(job string, attempt int) *jobRun {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.jobs[attemptKey{job, attempt}]
}

func (jr *jobRun) task(vertex, subtask int) *runningTask {
	jr.mu.Lock()
	defer jr.mu.Unlock()
	return jr.tasks[[2]int{vertex, subtask}]
}

func (t *runningTask) ref(tmID string) *controlpb.TaskRef {
	return &controlpb.TaskRef{TaskmanagerId: tmID, JobId: t.job, Attempt: int32(t.attempt), Vertex: int32(t.vertex), Subtask: int32(t.subtask)}
}

// jmCall makes one call to the JobManager, retrying briefly: a lost
// acknowledgement costs a whole checkpoint.
func (tm *TaskManager) jmCall(what string, call func(ctx context.Context, c controlpb.JobManagerClient) error) {
	for i := 0; i < 5; i++ {
		tm.mu.Lock()
		client := tm.jm
		tm.mu.Unlock()
		if client == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := call(ctx, client)
		cancel()
		if err == nil {
			return
		}
		tm.log.Debug(what, "err", err)
		time.Sleep(200 * time.Millisecond)
	}
}

// acknowledge sends a task's snapshot handles to the JobManager.
func (tm *TaskManager) acknowledge(t *runningTask, id int64, ops map[string]checkpoint.SubtaskState, m *controlpb.CheckpointMetrics) error {
	req := &controlpb.AcknowledgeCheckpointRequest{Task: t.ref(tm.id), CheckpointId: id, Operators: map[string][]byte{}, Metrics: m}
	for name, st := range ops {
		b, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("checkpoint %d: encode the state of operator %q: %w", id, name, err)
		}
		req.Operators[name] = b
	}
	t.lastCheckpoint.Store(id)
	if m != nil {
		t.alignmentNs.Store(m.AlignmentDurationNs)
	}
	tm.jmCall("acknowledge checkpoint", func(ctx context.Context, c controlpb.JobManagerClient) error {
		_, err := c.AcknowledgeCheckpoint(ctx, req)
		return err
	})
	return nil
}

// decline tells the JobManager that a task could not take a checkpoint.
func (tm *TaskManager) decline(t *runningTask, id int64, reason string) {
	req := &controlpb.DeclineCheckpointRequest{Task: t.ref(tm.id), CheckpointId: id, Reason: reason}
	tm.jmCall("decline checkpoint", func(ctx context.Context, c controlpb.JobManagerClient) error {
		_, err := c.DeclineCheckpoint(ctx, req)
		return err
	})
}

// endOfData tells the JobManager that a source task reached the end of its input.
func (tm *TaskManager) endOfData(t *runningTask) {
	ref := t.ref(tm.id)
	tm.jmCall("report end of data", func(ctx context.Context, c controlpb.JobManagerClient) error {
		_, err := c.ReportEndOfData(ctx, ref)
		return err
	})
}
