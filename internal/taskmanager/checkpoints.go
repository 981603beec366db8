package taskmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/fsguard"
	"github.com/sluice-dev/sluice/internal/security/sealed"
	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/hashmap"
	"github.com/sluice-dev/sluice/internal/state/pebblestate"
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
	if req.Target != "" {
		// Every TaskManager of the attempt hears of a savepoint's directory
		// before any source sends its barrier: tasks downstream write there too.
		if !filepath.IsAbs(req.Target) {
			return nil, fmt.Errorf("trigger savepoint %d: directory %q is not absolute", req.CheckpointId, req.Target)
		}
		jr.mu.Lock()
		jr.targets[req.CheckpointId] = filepath.Clean(req.Target)
		jr.mu.Unlock()
	}
	// The JobManager triggers a snapshot only when the one before it has
	// completed or was aborted: older savepoints' directories are no longer
	// written (a task still aligning an aborted one declines it), so an
	// attempt keeps at most the current one however many savepoints are taken.
	jr.mu.Lock()
	for id := range jr.targets {
		if id < req.CheckpointId {
			delete(jr.targets, id)
		}
	}
	jr.mu.Unlock()
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
		t.mail.Post(dataflow.Mail{Kind: kind, ID: req.CheckpointId, Final: req.Final && req.Completed})
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
func (tm *TaskManager) acknowledge(t *runningTask, id int64, ops map[string]checkpoint.SubtaskState, finished bool, m *controlpb.CheckpointMetrics) error {
	req := &controlpb.AcknowledgeCheckpointRequest{Task: t.ref(tm.id), CheckpointId: id, Operators: map[string][]byte{}, Metrics: m, Finished: finished}
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

// openTree opens a private state tree (a checkpoint or savepoint directory)
// or, read-only, a snapshot to restore from, confined to path.
func openTree(path string, mode fsguard.Mode) (*fsguard.Tree, error) {
	g, err := fsguard.New([]fsguard.Grant{{Path: path, Mode: mode}})
	if err != nil {
		return nil, err
	}
	return g.OpenTree(path, mode)
}

// taskCheckpointing builds what a deployed task needs to take snapshots and
// restore one (docs/architecture.md, "Engine", §6.5 and §7). The trees it
// opens are closed by the returned func when the task ends.
func (tm *TaskManager) taskCheckpointing(jr *jobRun, t *runningTask, d *controlpb.TaskDeployment) (*dataflow.TaskCheckpointing, func(), error) {
	cs := d.Checkpoints
	if cs.KeyId != tm.keyID() {
		return nil, nil, fmt.Errorf("deployment refused: the JobManager seals checkpoints with key %q but this TaskManager has %q (%s): give every process the same key file",
			cs.KeyId, tm.keyID(), sealed.KeyFileKey)
	}
	var (
		mu    sync.Mutex
		trees []*fsguard.Tree
		ckpt  *fsguard.Tree
		// savepoints are the open directories of savepoints being written, by
		// id: each is closed when the task acknowledges or declines it (its
		// files are written by then), so a job's savepoints, however many,
		// do not hold a descriptor each until the task ends.
		savepoints = map[int64]*fsguard.Tree{}
	)
	cleanup := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, tr := range trees {
			tr.Close()
		}
		trees = nil
		for id, tr := range savepoints {
			tr.Close()
			delete(savepoints, id)
		}
	}
	// done closes savepoint id's directory once the task's snapshot of it
	// has ended (acknowledged or declined).
	done := func(id int64) {
		mu.Lock()
		defer mu.Unlock()
		if tr, ok := savepoints[id]; ok {
			tr.Close()
			delete(savepoints, id)
		}
	}
	tc := &dataflow.TaskCheckpointing{Periodic: cs.Periodic}
	if cs.Mode == controlpb.CheckpointingMode_AT_LEAST_ONCE {
		tc.Mode = dataflow.AtLeastOnce
	}
	tc.Files = func(info checkpoint.Info) (checkpoint.SnapshotFiles, error) {
		mu.Lock()
		defer mu.Unlock()
		if info.IsSavepoint() {
			target, ok := jr.savepointTarget(info.ID)
			if !ok {
				return nil, fmt.Errorf("savepoint %d: its directory is unknown on taskmanager %s", info.ID, tm.id)
			}
			if _, ok := savepoints[info.ID]; ok {
				return nil, fmt.Errorf("savepoint %d: already being written by this task", info.ID)
			}
			tree, err := openTree(target, fsguard.StateDir)
			if err != nil {
				return nil, fmt.Errorf("savepoint %d: %w", info.ID, err)
			}
			savepoints[info.ID] = tree
			return checkpoint.NewSnapshotFiles(tree, d.JobId, tm.ckptKey, info)
		}
		if cs.Dir == "" {
			return nil, fmt.Errorf("checkpoint %d: the job has no checkpoint directory (%s)", info.ID, "state.checkpoints.dir")
		}
		if ckpt == nil {
			tree, err := openTree(cs.Dir, fsguard.StateDir)
			if err != nil {
				return nil, fmt.Errorf("checkpoint directory: %w", err)
			}
			ckpt = tree
			trees = append(trees, tree)
		}
		return checkpoint.NewSnapshotFiles(ckpt, d.JobId, tm.ckptKey, info)
	}
	tc.Ack = func(info checkpoint.Info, ops map[string]checkpoint.SubtaskState, m dataflow.CheckpointMetrics) {
		defer done(info.ID)
		finished := len(ops) > 0
		for _, st := range ops {
			finished = finished && st.Finished
		}
		if err := tm.acknowledge(t, info.ID, ops, finished, &controlpb.CheckpointMetrics{
			SyncDurationMs: m.Sync.Milliseconds(), AsyncDurationMs: m.Async.Milliseconds(),
			AlignmentDurationNs: m.Alignment.Nanoseconds(), StateSize: m.Size, CheckpointedSize: m.Written,
		}); err != nil {
			tm.decline(t, info.ID, err.Error())
		}
	}
	tc.Decline = func(id int64, reason string) {
		defer done(id)
		tm.decline(t, id, reason)
	}
	tc.EndOfData = func() { tm.endOfData(t) }
	if rs := d.Restore; rs != nil {
		if err := tm.restoreFor(jr, d, tc, &trees, &mu); err != nil {
			cleanup()
			return nil, nil, err
		}
		tc.SameJob = rs.SameJob
	}
	return tc, cleanup, nil
}

// restoreFor reads the _metadata a deployment restores from, checks it is
// the one the JobManager validated, and assigns each operator of the task's
// chain its state.
func (tm *TaskManager) restoreFor(jr *jobRun, d *controlpb.TaskDeployment, tc *dataflow.TaskCheckpointing, trees *[]*fsguard.Tree, mu *sync.Mutex) error {
	rs := d.Restore
	rel, err := filepath.Rel(rs.Root, rs.Metadata)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("deployment refused: restore metadata %s is not under %s", rs.Metadata, rs.Root)
	}
	tree, err := openTree(rs.Root, fsguard.ReadTree)
	if err != nil {
		return &restoreError{id: rs.CheckpointId, file: filepath.ToSlash(rel), err: err}
	}
	mu.Lock()
	*trees = append(*trees, tree)
	mu.Unlock()
	m, files, err := checkpoint.OpenRestore(tree, filepath.ToSlash(rel), tm.ckptKey, rs.MetadataSha256)
	if err != nil {
		return &restoreError{id: rs.CheckpointId, file: filepath.ToSlash(rel), err: err}
	}
	v := jr.plan.Vertices[d.Vertex]
	tr := &checkpoint.TaskRestore{CheckpointID: m.CheckpointID, Operators: map[string]*checkpoint.OperatorRestore{}}
	for _, name := range v.Operators {
		o, err := checkpoint.Assign(m, name, int(d.Subtask), v.Parallelism)
		if err != nil {
			return err
		}
		if o != nil {
			tr.Operators[name] = o
		}
	}
	tc.Restore, tc.RestoreFiles = tr, files
	return nil
}

// restoreError is a restore that failed on a file of the snapshot: the
// JobManager refuses that checkpoint and restores an older one.
type restoreError struct {
	id   int64
	file string
	err  error
}

func (e *restoreError) Error() string {
	return fmt.Sprintf("restore from checkpoint %d: %v", e.id, e.err)
}
func (e *restoreError) Unwrap() error { return e.err }

// restoreFailure says which file of which checkpoint a failed task could not
// restore, when that is why it failed.
func restoreFailure(d *controlpb.TaskDeployment, err error) *controlpb.RestoreFailure {
	if d.Restore == nil || err == nil {
		return nil
	}
	var re *restoreError
	if errors.As(err, &re) {
		return &controlpb.RestoreFailure{CheckpointId: re.id, File: re.file, Reason: re.err.Error()}
	}
	if file, ok := checkpoint.ErrFile(err); ok {
		return &controlpb.RestoreFailure{CheckpointId: d.Restore.CheckpointId, File: file, Reason: err.Error()}
	}
	return nil
}

// savepointTarget is the directory the JobManager created for savepoint id.
func (jr *jobRun) savepointTarget(id int64) (string, bool) {
	jr.mu.Lock()
	defer jr.mu.Unlock()
	t, ok := jr.targets[id]
	return t, ok
}

func (tm *TaskManager) keyID() string {
	if tm.ckptKey == nil {
		return ""
	}
	return tm.ckptKey.ID()
}

// stateFactory is the keyed state backend a deployment names.
func (tm *TaskManager) stateFactory(cs *controlpb.CheckpointSettings) state.Factory {
	if cs != nil && (cs.Backend == "pebble" || cs.Backend == "rocksdb") {
		if cs.Backend == "rocksdb" {
			tm.rocksdbOnce.Do(func() {
				tm.log.Info("state.backend.type rocksdb runs as pebble, an LSM store of the same family; RocksDB options are ignored")
			})
		}
		return pebblestate.Factory{}
	}
	return hashmap.Factory{}
}
