package jobmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// jobCheckpointing is a job's checkpoint coordinator and what the JobManager
// keeps around it (docs/architecture.md, "Engine", §6 and §7). Every job has
// one: without execution.checkpointing.interval it takes savepoints only.
// Guarded by JobManager.mu, except coord, which is safe for concurrent use.
type jobCheckpointing struct {
	coord   *checkpoint.Coordinator
	storage *checkpoint.JobStorage // nil: no state.checkpoints.dir, savepoints only
	// savepoint is the snapshot the job was submitted to start from.
	savepoint *checkpoint.CompletedCheckpoint
	// restoring is what the current attempt restores (nil: a fresh start).
	restoring *checkpoint.CompletedCheckpoint
	// refused lists the checkpoints a restore refused, and why, for the
	// failure of a job that has none left.
	refused []string
	// running: AttemptRunning was called for the current attempt.
	running bool
	// cancelOnStop: a cancel-job savepoint completed; the job ends CANCELED.
	cancelOnStop bool
}

// loadSavepoint reads the savepoint a job is submitted to start from and
// checks it against the job's plan (§8.3): the same max parallelism, state
// only for operators the job has (unless allowNonRestored), of the same type
// and keyedness.
func (jm *JobManager) loadSavepoint(path string, plan *dataflow.Plan, allowNonRestored bool) (*checkpoint.CompletedCheckpoint, error) {
	root, md, err := checkpoint.Resolve(path)
	if err != nil {
		return nil, err
	}
	cp, err := checkpoint.ReadCompleted(root, md, jm.set.CheckpointKey)
	if err != nil {
		return nil, fmt.Errorf("savepoint %s: %w", path, err)
	}
	if m := cp.Meta; m.MaxParallelism != plan.MaxParallelism {
		return nil, fmt.Errorf("pipeline.max-parallelism is %d but the savepoint %s was taken with %d: key groups cannot be divided differently; set pipeline.max-parallelism: %d",
			plan.MaxParallelism, path, m.MaxParallelism, m.MaxParallelism)
	}
	ops := map[string]dataflow.PlannedOperator{}
	for _, o := range plan.Operators() {
		ops[o.Name] = o
	}
	for _, so := range cp.Meta.Operators {
		if !hasState(so) {
			continue
		}
		o, ok := ops[so.Name]
		switch {
		case !ok && allowNonRestored:
			continue
		case !ok:
			return nil, fmt.Errorf("the savepoint %s has state for operator %q (%s), which this job does not have: restore it under that name, or pass --allowNonRestoredState (-n) to drop it",
				path, so.Name, so.Type)
		case o.Type != so.Type:
			return nil, fmt.Errorf("the savepoint %s has state for operator %q of type %s, but this job's %q is a %s: give the new operator another name to start it empty",
				path, so.Name, so.Type, so.Name, o.Type)
		case keyedState(so) && !o.Keyed:
			return nil, fmt.Errorf("the savepoint %s has keyed state for operator %q, which does not read a key_by in this job: key its input as before", path, so.Name)
		}
	}
	return cp, nil
}

func hasState(o checkpoint.OperatorState) bool {
	for _, s := range o.Subtasks {
		if s.Keyed != nil || s.Operator != nil {
			return true
		}
	}
	return false
}

func keyedState(o checkpoint.OperatorState) bool {
	for _, s := range o.Subtasks {
		if s.Keyed != nil {
			return true
		}
	}
	return false
}

// startCheckpointing creates the job's coordinator at submit.
func (jm *JobManager) startCheckpointing(j *job, savepoint *checkpoint.CompletedCheckpoint) error {
	set := j.checkpoints
	jc := &jobCheckpointing{savepoint: savepoint}
	if j.checkpointDir != "" {
		st, err := checkpoint.OpenJobStorage(set.Dir, j.id, jm.set.CheckpointKey)
		if err != nil {
			return err
		}
		jc.storage = st
	}
	var ops []checkpoint.OperatorInfo
	for _, o := range j.plan.Operators() {
		ops = append(ops, checkpoint.OperatorInfo{Name: o.Name, Type: o.Type, Vertex: o.Vertex, Parallelism: o.Parallelism})
	}
	mode := checkpoint.ExactlyOnce
	if set.Mode == AtLeastOnce {
		mode = checkpoint.AtLeastOnce
	}
	retention := checkpoint.DeleteOnCancellation
	if set.Retention == RetainOnCancellation {
		retention = checkpoint.RetainOnCancellation
	}
	var record func(context.Context, *checkpoint.CompletedCheckpoint) error
	if jm.ha != nil {
		record = jm.recordCheckpoint(j.id)
	}
	coord, err := checkpoint.NewCoordinator(checkpoint.CoordinatorConfig{
		Record: record,
		JobID:  j.id, JobName: j.name, MaxParallelism: j.plan.MaxParallelism, Operators: ops,
		Interval: set.Interval, Timeout: set.Timeout, MinPause: set.MinPause, Mode: mode,
		TolerableFailures: set.TolerableFailures, NumRetained: set.NumRetained, Retention: retention,
		Storage: jc.storage, Key: jm.set.CheckpointKey, Restored: savepoint, Logger: jm.log,
	}, &coordinatorGateway{jm: jm, j: j})
	if err != nil {
		if jc.storage != nil {
			jc.storage.Close()
		}
		return err
	}
	jc.coord = coord
	j.ckpt = jc
	return nil
}

// restorePointLocked picks what the next attempt restores: the savepoint the
// job started from for its first attempt, else the coordinator's latest
// retained checkpoint. A checkpoint whose _metadata cannot be read and
// verified now is refused and the next older one is taken. ok is false when
// checkpoints were refused and none is left: the job must fail.
func (jm *JobManager) restorePointLocked(j *job) (cp *checkpoint.CompletedCheckpoint, ok bool) {
	jc := j.ckpt
	if jc == nil {
		return nil, true
	}
	for {
		cp = jc.coord.RestorePoint()
		if cp == nil {
			return nil, len(jc.refused) == 0
		}
		fresh, err := checkpoint.ReadCompleted(cp.Root, cp.Metadata, jm.set.CheckpointKey)
		if err == nil {
			return fresh, true
		}
		jm.refuseLocked(j, cp.ID, err.Error())
	}
}

// refuseLocked drops a damaged checkpoint from the job's restore points.
func (jm *JobManager) refuseLocked(j *job, id int64, cause string) {
	jc := j.ckpt
	jc.coord.Refuse(id, cause)
	jc.refused = append(jc.refused, fmt.Sprintf("checkpoint %d: %s", id, cause))
	next := "nothing: no older checkpoint is retained"
	if cp := jc.coord.RestorePoint(); cp != nil {
		next = fmt.Sprintf("checkpoint %d", cp.ID)
		if cp.Savepoint {
			next = "the savepoint " + cp.ExternalPath()
		}
	}
	jm.log.Error(fmt.Sprintf("checkpoint %d refused: %s; restoring from %s", id, cause, next), "job", j.id)
}

// deploymentCheckpointing is the checkpoint part of a job's deployments.
func (jm *JobManager) deploymentCheckpointing(j *job, cp *checkpoint.CompletedCheckpoint) (*controlpb.CheckpointSettings, *controlpb.RestoreSettings) {
	set := j.checkpoints
	cs := &controlpb.CheckpointSettings{
		Periodic: set.Enabled(), Dir: j.checkpointDir, Backend: set.Backend, Incremental: set.Incremental,
	}
	if set.BackendAlias != "" {
		cs.Backend = set.BackendAlias // rocksdb: the TaskManager says it runs pebble
	}
	if set.Mode == AtLeastOnce {
		cs.Mode = controlpb.CheckpointingMode_AT_LEAST_ONCE
	}
	if k := jm.set.CheckpointKey; k != nil {
		cs.KeyId = k.ID()
	}
	if cp == nil {
		return cs, nil
	}
	return cs, &controlpb.RestoreSettings{
		Root: cp.Root, Metadata: cp.Metadata, MetadataSha256: cp.MetadataSHA256, CheckpointId: cp.ID,
		AllowNonRestoredState: j.allowNonRestoredState, SameJob: cp.Meta != nil && cp.Meta.JobID == j.id,
	}
}

// attemptRunningLocked tells the coordinator that every task of the current
// attempt runs, once: checkpoints may be triggered from now on.
func (jm *JobManager) attemptRunningLocked(j *job) {
	jc := j.ckpt
	if jc == nil || jc.running {
		return
	}
	for _, t := range j.tasks {
		if t.state != TaskRunning && t.state != TaskFinished {
			return
		}
	}
	sources := map[int]bool{}
	for _, v := range j.plan.Vertices {
		sources[v.ID] = v.Source
	}
	var tasks, srcs []checkpoint.TaskRef
	for _, t := range j.tasks {
		ref := checkpoint.TaskRef{TaskManagerID: t.tm, Attempt: j.attempt, Vertex: t.vertex, Subtask: t.subtask}
		tasks = append(tasks, ref)
		if sources[t.vertex] {
			srcs = append(srcs, ref)
		}
	}
	jc.running = true
	jc.coord.AttemptRunning(j.attempt, tasks, srcs)
}

// attemptEndedLocked tells the coordinator that the current attempt ended.
func (jm *JobManager) attemptEndedLocked(j *job) {
	if jc := j.ckpt; jc != nil {
		jc.running = false
		jc.coord.AttemptEnded(j.attempt)
	}
}

// coordinatorGateway is the coordinator's view of one job.
type coordinatorGateway struct {
	jm *JobManager
	j  *job
}

// attemptTMs returns, per TaskManager running tasks of the attempt, its
// source tasks (possibly none).
func (g *coordinatorGateway) attemptTMs(attempt int) (map[*taskManager][]*controlpb.TaskRef, error) {
	jm, j := g.jm, g.j
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if j.attempt != attempt || j.state != Running {
		return nil, fmt.Errorf("attempt %d of job %s is not running", attempt, j.id)
	}
	source := map[int]bool{}
	for _, v := range j.plan.Vertices {
		source[v.ID] = v.Source
	}
	out := map[*taskManager][]*controlpb.TaskRef{}
	for _, t := range j.tasks {
		tm, ok := jm.tms[t.tm]
		if !ok {
			return nil, fmt.Errorf("taskmanager %s of task %s (%d) is gone", t.tm, vertexName(j, t.vertex), t.subtask)
		}
		if _, seen := out[tm]; !seen {
			out[tm] = nil
		}
		if source[t.vertex] {
			out[tm] = append(out[tm], &controlpb.TaskRef{TaskmanagerId: t.tm, JobId: j.id, Attempt: int32(attempt), Vertex: int32(t.vertex), Subtask: int32(t.subtask)})
		}
	}
	return out, nil
}

// Trigger sends the barrier to the attempt's sources. For a savepoint every
// TaskManager of the attempt is told its directory first, those without
// sources before those with, so no task meets the barrier before its
// TaskManager knows where the savepoint goes.
func (g *coordinatorGateway) Trigger(ctx context.Context, attempt int, b event.Barrier, target string) error {
	tms, err := g.attemptTMs(attempt)
	if err != nil {
		return err
	}
	order := make([]*taskManager, 0, len(tms))
	for tm, srcs := range tms {
		if len(srcs) > 0 || target != "" {
			order = append(order, tm)
		}
	}
	slices.SortFunc(order, func(a, b *taskManager) int { return len(tms[a]) - len(tms[b]) })
	for _, tm := range order {
		_, err := tm.client.TriggerCheckpoint(ctx, &controlpb.TriggerCheckpointRequest{
			JobId: g.j.id, Attempt: int32(attempt), CheckpointId: b.ID, TimestampMs: b.Timestamp,
			Type: controlpb.SnapshotType(b.Type), Target: target, Sources: tms[tm],
		})
		if err != nil {
			return fmt.Errorf("trigger on taskmanager %s: %w", tm.id, err)
		}
	}
	return nil
}

func (g *coordinatorGateway) Notify(ctx context.Context, attempt int, id int64, completed bool) {
	tms, err := g.attemptTMs(attempt)
	if err != nil {
		return // the attempt ended: its tasks are gone
	}
	for tm := range tms {
		if _, err := tm.client.NotifyCheckpoint(ctx, &controlpb.NotifyCheckpointRequest{
			JobId: g.j.id, Attempt: int32(attempt), CheckpointId: id, Completed: completed,
		}); err != nil {
			g.jm.log.Warn("notify checkpoint", "job", g.j.id, "checkpoint", id, "taskmanager", tm.id, "err", err)
		}
	}
}

func (g *coordinatorGateway) FailOver(attempt int, cause string) {
	jm, j := g.jm, g.j
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if j.attempt == attempt && j.state == Running {
		jm.taskFailedLocked(j, cause)
	}
}

// Finished tells every task of the attempt that the final checkpoint
// completed: they end now (their sinks committed on its notification).
func (g *coordinatorGateway) Finished(attempt int) {
	g.jm.log.Info("final checkpoint completed: the job's tasks end", "job", g.j.id, "attempt", attempt)
	tms, err := g.attemptTMs(attempt)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(g.jm.ctx, 10*time.Second)
	defer cancel()
	for tm := range tms {
		if _, err := tm.client.NotifyCheckpoint(ctx, &controlpb.NotifyCheckpointRequest{
			JobId: g.j.id, Attempt: int32(attempt), Completed: true, Final: true,
		}); err != nil {
			g.jm.log.Warn("notify the final checkpoint", "job", g.j.id, "taskmanager", tm.id, "err", err)
		}
	}
}

func (g *coordinatorGateway) Stopped(attempt int, op *checkpoint.Operation) {
	jm, j := g.jm, g.j
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if j.attempt == attempt && j.ckpt != nil {
		j.ckpt.cancelOnStop = op.Request.Cancel
	}
	jm.log.Info("job stopped with a savepoint", "job", j.id, "location", op.Location, "cancel", op.Request.Cancel)
}

// Checkpoint RPCs from TaskManagers: the task must be one of the job's
// current attempt, deployed to the TaskManager that calls.

// checkTaskRefLocked finds the job of a task reference and checks that the
// task runs on the TaskManager named in it.
func (jm *JobManager) checkTaskRefLocked(ref *controlpb.TaskRef) (*job, error) {
	if ref == nil {
		return nil, status.Error(codes.InvalidArgument, "no task")
	}
	j, ok := jm.jobs[ref.JobId]
	if !ok || j.ckpt == nil {
		return nil, status.Errorf(codes.NotFound, "job %s: no such job", ref.JobId)
	}
	if int(ref.Attempt) != j.attempt {
		return nil, status.Errorf(codes.FailedPrecondition, "job %s attempt %d is over (current attempt %d)", ref.JobId, ref.Attempt, j.attempt)
	}
	t, ok := j.tasks[taskKey{int(ref.Vertex), int(ref.Subtask)}]
	if !ok || t.tm != ref.TaskmanagerId {
		jm.log.Warn("checkpoint call refused: the task does not run on the calling taskmanager", "job", ref.JobId,
			"attempt", ref.Attempt, "vertex", ref.Vertex, "subtask", ref.Subtask, "taskmanager", ref.TaskmanagerId)
		return nil, status.Errorf(codes.PermissionDenied, "taskmanager %s runs no task %d/%d of job %s attempt %d",
			ref.TaskmanagerId, ref.Vertex, ref.Subtask, ref.JobId, ref.Attempt)
	}
	return j, nil
}

func taskRef(r *controlpb.TaskRef) checkpoint.TaskRef {
	return checkpoint.TaskRef{TaskManagerID: r.TaskmanagerId, Attempt: int(r.Attempt), Vertex: int(r.Vertex), Subtask: int(r.Subtask)}
}

// ackOperators decodes the per-operator states of an acknowledgement as
// _metadata is decoded: one JSON object each, unknown fields and anything
// after the object refused. What they hold is checked by the coordinator.
func ackOperators(req *controlpb.AcknowledgeCheckpointRequest) (map[string]checkpoint.SubtaskState, error) {
	out := map[string]checkpoint.SubtaskState{}
	for name, b := range req.Operators {
		var st checkpoint.SubtaskState
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		err := dec.Decode(&st)
		if err == nil {
			if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
				err = errors.New("data after the JSON object")
			}
		}
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "checkpoint %d: the state of operator %q: %v", req.CheckpointId, name, err)
		}
		out[name] = st
	}
	return out, nil
}

func (s *rpcServer) AcknowledgeCheckpoint(ctx context.Context, req *controlpb.AcknowledgeCheckpointRequest) (*controlpb.Ack, error) {
	ops, err := ackOperators(req)
	if err != nil {
		s.jm.log.Warn("checkpoint acknowledgement refused", "job", req.GetTask().GetJobId(), "taskmanager", req.GetTask().GetTaskmanagerId(), "checkpoint", req.CheckpointId, "err", err)
		return nil, err
	}
	ack := checkpoint.Ack{CheckpointID: req.CheckpointId, Operators: ops, Finished: req.Finished}
	if m := req.Metrics; m != nil {
		ack.Metrics = checkpoint.AckMetrics{
			SyncDuration: time.Duration(m.SyncDurationMs) * time.Millisecond, AsyncDuration: time.Duration(m.AsyncDurationMs) * time.Millisecond,
			AlignmentDuration: time.Duration(m.AlignmentDurationNs), StateSize: m.StateSize, CheckpointedSize: m.CheckpointedSize,
		}
	}
	jm := s.jm
	jm.mu.Lock()
	j, err := jm.checkTaskRefLocked(req.Task)
	jm.mu.Unlock()
	if err != nil {
		return nil, err
	}
	ack.Task = taskRef(req.Task)
	if err := j.ckpt.coord.Acknowledge(ack); err != nil {
		jm.log.Warn("checkpoint acknowledgement refused", "job", j.id, "checkpoint", req.CheckpointId, "err", err)
		return nil, status.Errorf(codes.FailedPrecondition, "%v", err)
	}
	return &controlpb.Ack{}, nil
}

func (s *rpcServer) DeclineCheckpoint(ctx context.Context, req *controlpb.DeclineCheckpointRequest) (*controlpb.Ack, error) {
	jm := s.jm
	jm.mu.Lock()
	j, err := jm.checkTaskRefLocked(req.Task)
	jm.mu.Unlock()
	if err != nil {
		return nil, err
	}
	j.ckpt.coord.Decline(checkpoint.Decline{Task: taskRef(req.Task), CheckpointID: req.CheckpointId, Reason: req.Reason})
	return &controlpb.Ack{}, nil
}

func (s *rpcServer) ReportEndOfData(ctx context.Context, ref *controlpb.TaskRef) (*controlpb.Ack, error) {
	jm := s.jm
	jm.mu.Lock()
	j, err := jm.checkTaskRefLocked(ref)
	jm.mu.Unlock()
	if err != nil {
		return nil, err
	}
	j.ckpt.coord.EndOfData(int(ref.Attempt), taskRef(ref))
	return &controlpb.Ack{}, nil
}

// refusedList is the failure cause of a job whose every checkpoint was refused.
func refusedList(jc *jobCheckpointing) string {
	return "no checkpoint left to restore: " + strings.Join(slices.Clone(jc.refused), "; ")
}
