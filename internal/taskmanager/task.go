package taskmanager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/network"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/transport"
)

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// jobRun is the part of one job attempt that runs on this TaskManager.
type jobRun struct {
	key    attemptKey
	ctx    context.Context
	cancel context.CancelFunc

	planOnce sync.Once
	plan     *dataflow.Plan
	files    *dataflow.JobFiles
	planErr  error

	mu    sync.Mutex
	tasks map[[2]int]*runningTask
	// targets are the directories of the attempt's savepoints, by id.
	targets map[int64]string
}

func (jr *jobRun) taskList() []*runningTask {
	jr.mu.Lock()
	defer jr.mu.Unlock()
	out := make([]*runningTask, 0, len(jr.tasks))
	for _, t := range jr.tasks {
		out = append(out, t)
	}
	return out
}

// runningTask is one deployed subtask.
type runningTask struct {
	job             string
	attempt         int
	vertex, subtask int
	metrics         dataflow.VertexMetrics
	mail            *dataflow.Mailbox // checkpoint triggers and outcomes
	lastCheckpoint  atomic.Int64      // id of the last checkpoint the task acknowledged
	alignmentNs     atomic.Int64      // its alignment time
	mu              sync.Mutex
	writers         []*network.Writer
	gate            *network.InputGate // nil for a source
}

func (t *runningTask) bytesSent() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n int64
	for _, w := range t.writers {
		n += w.BytesSent()
	}
	return n
}

func (t *runningTask) backPressured() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var d time.Duration
	for _, w := range t.writers {
		d += w.BackPressured()
	}
	return d
}

// idleTime is the time the task waited for input.
func (t *runningTask) idleTime() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gate == nil {
		return 0
	}
	return t.gate.IdleTime()
}

func (t *runningTask) metricsProto() *controlpb.TaskMetrics {
	m := &controlpb.TaskMetrics{
		JobId: t.job, Attempt: int32(t.attempt), Vertex: int32(t.vertex), Subtask: int32(t.subtask),
		ReadRecords: t.metrics.ReadRecords.Load(), ReadBytes: t.metrics.ReadBytes.Load(),
		WriteRecords: t.metrics.WriteRecords.Load(), WriteBytes: t.metrics.WriteBytes.Load(),
		BackPressuredMs:       t.backPressured().Milliseconds(),
		IdleMs:                t.idleTime().Milliseconds(),
		CheckpointAlignmentNs: t.alignmentNs.Load(), LastCheckpointId: t.lastCheckpoint.Load(),
		NumLateRecordsDropped: t.metrics.LateRecordsDropped.Load(),
	}
	if wm := t.metrics.InputWatermark.Load(); wm != dataflow.NoTimestamp {
		m.CurrentInputWatermark, m.HasInputWatermark = wm, true
	}
	if wm := t.metrics.OutputWatermark.Load(); wm != dataflow.NoTimestamp {
		m.CurrentOutputWatermark, m.HasOutputWatermark = wm, true
	}
	return m
}

// rpcServer implements the TaskManager control service.
type rpcServer struct {
	controlpb.UnimplementedTaskManagerServer
	tm *TaskManager
}

func (s *rpcServer) DeployTask(ctx context.Context, d *controlpb.TaskDeployment) (*controlpb.Ack, error) {
	if d.JobId == "" || d.Vertex < 0 || d.Subtask < 0 || d.Attempt < 0 {
		return nil, fmt.Errorf("deployment refused: job id, vertex, subtask and attempt are required")
	}
	if err := s.tm.deploy(d); err != nil {
		return nil, err
	}
	return &controlpb.Ack{}, nil
}

func (s *rpcServer) CancelJob(ctx context.Context, req *controlpb.CancelJobRequest) (*controlpb.Ack, error) {
	s.tm.cancelJob(req.JobId, int(req.Attempt))
	return &controlpb.Ack{}, nil
}

func (tm *TaskManager) deploy(d *controlpb.TaskDeployment) error {
	key := attemptKey{d.JobId, int(d.Attempt)}
	tm.mu.Lock()
	if tm.ctx == nil || tm.ctx.Err() != nil {
		tm.mu.Unlock()
		return errors.New("deployment refused: taskmanager is shutting down")
	}
	jr, ok := tm.jobs[key]
	if !ok {
		ctx, cancel := context.WithCancel(tm.ctx)
		jr = &jobRun{key: key, ctx: ctx, cancel: cancel, tasks: map[[2]int]*runningTask{}, targets: map[int64]string{}}
		tm.jobs[key] = jr
	}
	tk := [2]int{int(d.Vertex), int(d.Subtask)}
	if _, dup := jr.tasks[tk]; dup {
		tm.mu.Unlock()
		return fmt.Errorf("deployment refused: task %d/%d of job %s attempt %d already runs here", d.Vertex, d.Subtask, d.JobId, d.Attempt)
	}
	t := &runningTask{job: d.JobId, attempt: int(d.Attempt), vertex: int(d.Vertex), subtask: int(d.Subtask), mail: dataflow.NewMailbox()}
	t.metrics.InputWatermark.Store(dataflow.NoTimestamp)
	t.metrics.OutputWatermark.Store(dataflow.NoTimestamp)
	jr.mu.Lock()
	jr.tasks[tk] = t
	jr.mu.Unlock()
	tm.mu.Unlock()

	tm.wg.Add(1)
	go func() {
		defer tm.wg.Done()
		out := tm.newTaskOutput(t)
		err := tm.runTask(jr, t, d, out)
		// Before the end is reported: whoever sees the job end has seen its output.
		out.close()
		u := &controlpb.TaskStateUpdate{State: controlpb.TaskState_FINISHED}
		switch {
		case err == nil:
		case jr.ctx.Err() != nil:
			u.State = controlpb.TaskState_CANCELED
		default:
			u.State, u.Error = controlpb.TaskState_FAILED, err.Error()
			u.CausedByPeer, u.Unrecoverable = network.CausedByPeer(err), dataflow.IsUnrecoverable(err)
			u.RestoreFailure = restoreFailure(d, err)
			tm.log.Warn("task failed", "job", d.JobId, "attempt", d.Attempt, "vertex", d.Vertex, "subtask", d.Subtask, "err", err,
				"caused-by-peer", u.CausedByPeer, "unrecoverable", u.Unrecoverable)
		}
		tm.sentDone.Add(t.bytesSent())
		tm.report(t, u)
		tm.taskEnded(jr, tk)
	}()
	return nil
}

// runTask fetches the job's artifacts, wires its channels and runs it.
func (tm *TaskManager) runTask(jr *jobRun, t *runningTask, d *controlpb.TaskDeployment, out *taskOutput) error {
	ctx := jr.ctx
	jr.planOnce.Do(func() { jr.plan, jr.files, jr.planErr = tm.loadPlan(ctx, d) })
	if jr.planErr != nil {
		return jr.planErr
	}
	io := dataflow.TaskIO{Stdout: out, Metrics: &t.metrics, Outputs: map[int][]dataflow.RecordWriter{}}
	io.WatermarkInterval = time.Duration(d.AutoWatermarkIntervalMs) * time.Millisecond
	io.Files = jr.files
	io.Job = dataflow.JobInfo{ID: d.JobId, Name: jr.plan.Name, Attempt: int(d.Attempt)}
	io.Logger = tm.log
	io.Credentials = tm.credentialsFor(d.JobId)
	io.Mailbox = t.mail
	io.State, io.StateDir = tm.stateFactory(d.Checkpoints), filepath.Join(tm.workDir, "state")
	if cs := d.Checkpoints; cs != nil {
		io.StateIncremental = cs.Incremental
		tc, cleanup, err := tm.taskCheckpointing(jr, t, d)
		if err != nil {
			return err
		}
		defer cleanup()
		io.Checkpoints = tc
	}
	if gate, err := tm.registerGate(jr.plan, d); err != nil {
		return err
	} else if gate != nil {
		defer gate.Close()
		io.Input = gate
		t.mu.Lock()
		t.gate = gate
		t.mu.Unlock()
	}
	dial := network.Dialer(tm.sec.Dialer(transport.Data))
	opts := network.WriterOptions{
		BufferSize:   tm.set.BufferSize,
		FlushTimeout: tm.set.BufferTimeout,
	}
	ok := false
	defer func() {
		if !ok {
			t.mu.Lock()
			for _, w := range t.writers {
				w.Abort()
			}
			t.mu.Unlock()
		}
	}()
	for _, oe := range d.Outputs {
		ws := make([]dataflow.RecordWriter, oe.TargetParallelism)
		for _, tgt := range oe.Targets {
			if tgt.Subtask < 0 || tgt.Subtask >= oe.TargetParallelism {
				return fmt.Errorf("deployment: edge %d target subtask %d out of range 0..%d", oe.Edge, tgt.Subtask, oe.TargetParallelism-1)
			}
			w, err := network.Connect(ctx, dial, tgt.DataAddress, network.ChannelID{
				Job: d.JobId, Attempt: int(d.Attempt), Edge: int(oe.Edge), Source: int(d.Subtask),
				Target: int(tgt.Subtask), Vertex: int(oe.TargetVertex),
			}, opts)
			if err != nil {
				return fmt.Errorf("connect edge %d to subtask %d at %s: %w", oe.Edge, tgt.Subtask, tgt.DataAddress, err)
			}
			t.mu.Lock()
			t.writers = append(t.writers, w)
			t.mu.Unlock()
			ws[tgt.Subtask] = w
		}
		io.Outputs[int(oe.Edge)] = ws
	}
	tm.report(t, &controlpb.TaskStateUpdate{State: controlpb.TaskState_RUNNING})
	err := jr.plan.RunSubtask(ctx, int(d.Vertex), int(d.Subtask), io)
	if err == nil {
		ok = true
	}
	return err
}

// loadPlan fetches and verifies the spec and attached files, sets up the
// job's file access (the grants the JobManager authorized, nothing more)
// and builds the same plan the JobManager built, reading csv headers
// through those grants.
func (tm *TaskManager) loadPlan(ctx context.Context, d *controlpb.TaskDeployment) (*dataflow.Plan, *dataflow.JobFiles, error) {
	addr := d.BlobAddress
	if addr == "" {
		tm.mu.Lock()
		addr = tm.blobAddr
		tm.mu.Unlock()
	}
	specPath, err := tm.cache.Fetch(ctx, blobOwner(d), addr, d.SpecBlob)
	if err != nil {
		return nil, nil, err
	}
	spec, err := os.ReadFile(specPath)
	if err != nil {
		return nil, nil, err
	}
	attached := map[string]string{}
	for name, k := range d.Files {
		p, err := tm.cache.Fetch(ctx, blobOwner(d), addr, k)
		if err != nil {
			return nil, nil, fmt.Errorf("attached file %s: %w", name, err)
		}
		attached[name] = p
	}
	access := make([]dataflow.FileAccess, len(d.FileGrants))
	for i, g := range d.FileGrants {
		access[i] = dataflow.FileAccess{Operator: g.Operator, Path: g.Path, Write: g.Write, Attached: g.Attached}
	}
	files, err := dataflow.NewJobFiles(access, func(name string) (string, bool) { p, ok := attached[name]; return p, ok })
	if err != nil {
		return nil, nil, fmt.Errorf("deployment: %w", err)
	}
	s, err := dataflow.ParseSpec(spec, d.Parameters)
	if err != nil {
		return nil, nil, fmt.Errorf("job spec: %w", err)
	}
	plan, err := s.PlanWith(planOptions(d, files.CSVHeader))
	if err != nil {
		return nil, nil, fmt.Errorf("job plan: %w", err)
	}
	return plan, files, nil
}

// planOptions are the options the JobManager planned the deployed job with, so this plan
// routes keys and divides sources as every other subtask's does; csvHeader reads a csv
// source's header through the job's grants.
func planOptions(d *controlpb.TaskDeployment, csvHeader func(*dataflow.OperatorSpec) ([]string, error)) dataflow.PlanOptions {
	return dataflow.PlanOptions{
		DefaultParallelism: int(d.DefaultParallelism), MaxExpressionCost: d.ExpressionMaxCost,
		MaxParallelism: int(d.MaxParallelism), CSVHeader: csvHeader,
		StateTTL: time.Duration(d.StateTtlMs) * time.Millisecond,
	}
}

// report sends a task state to the JobManager, retrying briefly: a lost
// final state would leave the job waiting until heartbeat.timeout.
func (tm *TaskManager) report(t *runningTask, u *controlpb.TaskStateUpdate) {
	tm.mu.Lock()
	client := tm.jm
	tm.mu.Unlock()
	if client == nil {
		return
	}
	u.TaskmanagerId, u.JobId, u.Attempt, u.Vertex, u.Subtask = tm.id, t.job, int32(t.attempt), int32(t.vertex), int32(t.subtask)
	u.Metrics = t.metricsProto()
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := client.UpdateTaskState(ctx, u)
		cancel()
		if err == nil {
			return
		}
		tm.log.Debug("report task state", "err", err)
		time.Sleep(200 * time.Millisecond)
	}
}

func (tm *TaskManager) taskEnded(jr *jobRun, tk [2]int) {
	jr.mu.Lock()
	delete(jr.tasks, tk)
	empty := len(jr.tasks) == 0
	jr.mu.Unlock()
	if !empty {
		return
	}
	tm.mu.Lock()
	if cur, ok := tm.jobs[jr.key]; ok && cur == jr {
		jr.mu.Lock()
		if len(jr.tasks) == 0 {
			delete(tm.jobs, jr.key)
			// Under tm.mu: a new run of the same attempt is created under
			// it too, so its fetches come after this release.
			tm.releaseBlobs(jr.key)
		}
		jr.mu.Unlock()
	}
	tm.mu.Unlock()
}

// cancelJob cancels the tasks of one attempt of a job (every attempt when
// attempt is negative).
func (tm *TaskManager) cancelJob(job string, attempt int) {
	tm.mu.Lock()
	var runs []*jobRun
	for k, jr := range tm.jobs {
		if k.job == job && (attempt < 0 || k.attempt == attempt) {
			runs = append(runs, jr)
		}
	}
	tm.mu.Unlock()
	for _, jr := range runs {
		jr.cancel()
		tm.net.UnregisterJob(jr.key.job, jr.key.attempt)
	}
	if len(runs) > 0 {
		tm.log.Info("tasks cancelled", "job", job, "attempt", attempt)
	}
}

func (tm *TaskManager) cancelAll() {
	tm.mu.Lock()
	var runs []*jobRun
	for _, jr := range tm.jobs {
		runs = append(runs, jr)
	}
	tm.mu.Unlock()
	for _, jr := range runs {
		jr.cancel()
		tm.net.UnregisterJob(jr.key.job, jr.key.attempt)
	}
}

// registerGate registers the task's input gate: with the deployment's channel layout
// (inputs), so channels are numbered as the plan numbers them and each knows the input it
// feeds; without one (a JobManager that sends none), as one group in order of connection,
// which only a one-input task can use. nil: the task has no input.
func (tm *TaskManager) registerGate(p *dataflow.Plan, d *controlpb.TaskDeployment) (*network.InputGate, error) {
	id := network.GateID{Job: d.JobId, Attempt: int(d.Attempt), Vertex: int(d.Vertex), Subtask: int(d.Subtask)}
	if len(d.Inputs) == 0 {
		if d.InputChannels <= 0 {
			return nil, nil
		}
		for _, g := range p.InputLayout(int(d.Vertex)) {
			if g.Input != 0 {
				return nil, fmt.Errorf("deployment of vertex %d: no input layout for a task with two inputs: upgrade the JobManager", d.Vertex)
			}
		}
		return tm.net.RegisterGate(id, int(d.InputChannels)), nil
	}
	layout := make([]network.GateInput, len(d.Inputs))
	for i, g := range d.Inputs {
		layout[i] = network.GateInput{Edge: int(g.Edge), Channels: int(g.Channels), Forward: g.Forward, Input: int(g.Input)}
	}
	gate, err := tm.net.RegisterGateLayout(id, layout)
	if err != nil {
		return nil, fmt.Errorf("deployment of vertex %d: %w", d.Vertex, err)
	}
	return gate, nil
}
