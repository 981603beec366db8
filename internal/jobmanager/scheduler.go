package jobmanager

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/dataflow"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/authz"
	"github.com/sluice-dev/sluice/internal/security/credentials"
	"github.com/sluice-dev/sluice/internal/security/tokens"
)

// ErrBadSubmission marks a submission refused for what it contains.
var ErrBadSubmission = errors.New("bad job submission")

// SubmissionError is a submission refused for what it contains; its message
// is the reason alone, for the client to fix.
type SubmissionError struct{ Err error }

func (e *SubmissionError) Error() string        { return e.Err.Error() }
func (e *SubmissionError) Unwrap() error        { return e.Err }
func (e *SubmissionError) Is(target error) bool { return target == ErrBadSubmission }

// Submission is a job as a client sends it.
type Submission struct {
	Spec        []byte
	Params      map[string]string
	Files       map[string][]byte // attached files by name
	Parallelism int               // 0: parallelism.default
	// ACL: the submitter owns the job; view and modify lists add others.
	ACL authz.JobACL
	// BaseDir, when set, is the directory relative data paths are taken
	// against. Only sluice local sets it: there the client and the cluster
	// are one process with one working directory. Empty (every REST
	// submission): relative data paths are refused.
	BaseDir string
	// Config is the job's own configuration: keys a job may set
	// (config.Key.Job), over the cluster's.
	Config map[string]string
	// Parsed is Spec parsed with Params, when the caller parsed it already (the REST handler
	// does, to authorize the data the job touches): a spec is parsed once per submission.
	Parsed *dataflow.Spec
	// SavepointPath is the savepoint (or retained checkpoint) the job starts
	// from (sluice run --fromSavepoint): its directory, its _metadata, or a
	// file: URI of either. Empty: the job starts without state.
	SavepointPath string
	// AllowNonRestoredState lets a job start from a savepoint that has state
	// for operators the job does not have (sluice run --allowNonRestoredState).
	AllowNonRestoredState bool
	// Tokens are delegation tokens the client obtained and ships with the job (sluice run
	// --kerberos: a cluster without a Kerberos credential of its own); they are not renewed.
	Tokens []credentials.Token
}

// attachedIn reports whether a name is one of the attached files.
func attachedIn(files map[string][]byte) func(string) bool {
	return func(name string) bool { _, ok := files[name]; return ok }
}

// Submit validates a job, stores its artifacts and schedules it. It returns
// the job id; errors wrapping ErrBadSubmission are the client's to fix.
func (jm *JobManager) Submit(s Submission) (string, error) {
	sub, err := jm.SubmitJob(s)
	return sub.ID, err
}

// Submitted is an accepted job.
type Submitted struct {
	ID string
	// Warnings are what the submitter should know about the job as it
	// will run, such as a source that cannot replay its input under
	// checkpointing (at most once, docs/architecture.md "Engine" §6.8).
	// The JobManager logs them for the job too.
	Warnings []string
}

// SubmitJob is Submit, returning the warnings of the job with its id.
func (jm *JobManager) SubmitJob(s Submission) (Submitted, error) {
	id, warnings, err := jm.submit(s)
	return Submitted{ID: id, Warnings: warnings}, err
}

func (jm *JobManager) submit(s Submission) (string, []string, error) {
	return jm.submitWith(s, nil)
}

// submitWith submits s; r, when not nil, is a job recovered from the
// high-availability store: it keeps its id and restores its latest
// checkpoint.
func (jm *JobManager) submitWith(s Submission, r *recovery) (string, []string, error) {
	spec := s.Parsed
	if spec == nil {
		var err error
		if spec, err = dataflow.ParseSpec(s.Spec, s.Params); err != nil {
			return "", nil, &SubmissionError{err}
		}
	}
	// The files the job may touch, fixed now: the TaskManagers open these
	// paths and nothing else.
	access, err := spec.FileAccesses(attachedIn(s.Files), s.BaseDir)
	if err != nil {
		return "", nil, &SubmissionError{err}
	}
	// The job's configuration: the cluster's, with what the submitter set
	// for this job (flink run -D).
	cfg, err := jm.cfg.WithJobSettings(jobSettings(spec, s.Config))
	if err != nil {
		if spec.Config != nil {
			err = fmt.Errorf("%w (from the job spec's config block at line %d, or -D)", err, spec.ConfigLine)
		}
		return "", nil, &SubmissionError{err}
	}
	ckpt, err := CheckpointSettingsFromConfig(cfg)
	if err != nil {
		return "", nil, &SubmissionError{err}
	}
	if err := checkCheckpointing(ckpt); err != nil {
		return "", nil, &SubmissionError{err}
	}
	restart, err := RestartSettingsFromConfig(cfg, ckpt.Enabled())
	if err != nil {
		return "", nil, &SubmissionError{err}
	}
	var savepoint string
	if s.SavepointPath != "" {
		if savepoint, err = resolveSavepoint(s.SavepointPath); err != nil {
			return "", nil, &SubmissionError{err}
		}
	}
	par := s.Parallelism
	if par <= 0 {
		par = cfg.Int("parallelism.default")
	}
	plan, err := spec.PlanWith(jm.planOptions(par, cfg))
	if err != nil {
		return "", nil, &SubmissionError{err}
	}
	var restoreFrom *checkpoint.CompletedCheckpoint
	if r != nil && r.pointer != nil {
		// The latest completed checkpoint supersedes the savepoint the job
		// was submitted with.
		if restoreFrom, err = jm.loadRecoveredCheckpoint(r.pointer); err != nil {
			return "", nil, err
		}
		savepoint = ""
	} else if savepoint != "" {
		// The directory resolveSavepoint found, not the raw path again: what is
		// read is what the REST layer authorized (one parse of the path).
		if restoreFrom, err = jm.loadSavepoint(savepoint, plan, s.AllowNonRestoredState); err != nil {
			return "", nil, &SubmissionError{err}
		}
	}
	id := newID(16)
	if r != nil {
		id = r.id
	}
	// The job's delegation tokens, obtained before anything is stored: a provider that
	// cannot serve the job refuses it now, naming the service, not at its first connection.
	tctx := jm.ctx
	if tctx == nil { // a JobManager that was not Run (unit tests)
		tctx = context.Background()
	}
	if _, err := jm.tokens.Start(tctx, tokens.Job{ID: id, Name: plan.Name, Owner: s.ACL.Owner, ExpiryActions: tokens.SettingsFrom(cfg).ExpiryAction}, tokenUses(spec, cfg), s.Tokens); err != nil {
		return "", nil, &SubmissionError{err}
	}
	registered := false
	defer func() {
		if !registered {
			jm.tokens.Stop(context.WithoutCancel(tctx), id)
		}
	}()
	// Created now, the last check of the submission: a directory the
	// JobManager cannot create refuses the job rather than failing its
	// first checkpoint.
	var ckptDir string
	if ckpt.Enabled() {
		if ckptDir, err = createJobCheckpointDir(ckpt.Dir, id); err != nil {
			return "", nil, &SubmissionError{err}
		}
	}
	defer func() {
		if !registered && ckptDir != "" {
			_ = os.Remove(ckptDir) // empty: nothing was written into it
		}
	}()
	// Held until the job is registered, so the blob collector cannot
	// delete these blobs (they may equal a removed job's) before then.
	jm.blobMu.Lock()
	defer jm.blobMu.Unlock()
	specKey, err := jm.blobs.Put(s.Spec)
	if err != nil {
		return "", nil, err
	}
	files := map[string]string{}
	for name, data := range s.Files {
		k, err := jm.blobs.Put(data)
		if err != nil {
			return "", nil, err
		}
		files[name] = k
	}
	now := time.Now()
	if jm.ha != nil && (r == nil || r.store) {
		// Stored before it runs: a job a successor cannot find must not
		// have started.
		if err := jm.storeJob(id, s, now); err != nil {
			return "", nil, err
		}
	}
	start := now
	if r != nil && !r.submitted.IsZero() {
		start = r.submitted
	}
	j := &job{
		id: id, name: plan.Name, spec: s.Spec, specKey: specKey,
		params: s.Params, files: files, access: access, parallelism: par, plan: plan, acl: s.ACL, cfg: cfg, settings: s.Config,
		start: start, timestamps: map[JobState]time.Time{}, tasks: map[taskKey]*task{},
		slots: map[string]int{}, held: map[slotGroup]map[int]bool{}, done: make(chan struct{}),
		output:      newOutputBuffer(jm.set.OutputMaxLines, jm.set.OutputMaxBytes),
		checkpoints: ckpt, checkpointDir: ckptDir, restart: restart, backoff: newRestartBackoff(restart),
		savepointPath: savepoint, allowNonRestoredState: s.AllowNonRestoredState,
	}
	// The job's tokens go when it ends (released at the provider where it can).
	j.ended = func() { jm.spawn(func() { jm.tokens.Stop(jm.ctx, id) }) }
	j.warnings = spec.OptionWarnings()
	if ckpt.Enabled() {
		// Accepted, not refused: a socket source's job is at most once, as in Flink.
		j.warnings = append(j.warnings, spec.ReplayWarnings()...)
	}
	if err := jm.startCheckpointing(j, restoreFrom); err != nil {
		return "", nil, &SubmissionError{err}
	}
	registered = true
	j.setState(Created, now)
	jm.mu.Lock()
	jm.jobs[j.id] = j
	jm.mu.Unlock()
	if jm.ha != nil {
		jm.forgetWhenDone(j)
	}
	jm.log.Info("job submitted", "job", j.id, "name", j.name, "owner", s.ACL.Owner, "parallelism", par, "vertices", len(plan.Vertices))
	if ckpt.Enabled() {
		jm.log.Info("job checkpoints", "job", j.id, "interval", ckpt.Interval, "mode", ckpt.Mode, "dir", ckptDir)
	}
	if restart.Default && restart.Strategy == RestartExponentialDelay {
		jm.log.Info("job restart strategy: exponential-delay, as checkpointing is on and restart-strategy.type is not set", "job", j.id)
	}
	if savepoint != "" {
		jm.log.Info("job restores from a savepoint", "job", j.id, "path", savepoint, "allow-non-restored-state", s.AllowNonRestoredState)
	}
	for _, w := range j.warnings {
		jm.log.Warn("job accepted with a warning", "job", j.id, "warning", w)
	}
	jm.spawn(func() { jm.startAttempt(j) })
	return j.id, j.warnings, nil
}

// jobSettings are a job's own settings: its spec's config block, overridden
// by what the submitter set (sluice run -D).
func jobSettings(spec *dataflow.Spec, submitted map[string]string) map[string]string {
	if len(spec.Config) == 0 {
		return submitted
	}
	out := maps.Clone(spec.Config)
	maps.Copy(out, submitted)
	return out
}

// fileGrants is the deployment form of a job's file accesses.
func fileGrants(access []dataflow.FileAccess) []*controlpb.FileGrant {
	out := make([]*controlpb.FileGrant, len(access))
	for i, a := range access {
		out[i] = &controlpb.FileGrant{Operator: a.Operator, Path: a.Path, Write: a.Write, Attached: a.Attached}
	}
	return out
}

// planOptions are the settings the JobManager and its TaskManagers build a job's plan with;
// cfg is the job's configuration (pipeline.max-parallelism may be set per job).
func (jm *JobManager) planOptions(parallelism int, cfg *config.Config) dataflow.PlanOptions {
	return dataflow.PlanOptions{
		DefaultParallelism: parallelism,
		MaxExpressionCost:  jm.set.MaxExpressionCost,
		MaxParallelism:     cfg.Int("pipeline.max-parallelism"),
		StateTTL:           cfg.Duration("state.ttl"),
	}
}

func maxParallelism(p *dataflow.Plan) int {
	n := 1
	for _, v := range p.Vertices {
		if v.Parallelism > n {
			n = v.Parallelism
		}
	}
	return n
}

// startAttempt waits for enough free slots, places the subtasks and deploys
// them. Subtask i of every vertex shares slot i (Flink's slot sharing), so a
// job needs as many slots as its highest parallelism.
func (jm *JobManager) startAttempt(j *job) {
	need := maxParallelism(j.plan)
	timeout := jm.set.SlotRequestTimeout
	deadline := time.Now().Add(timeout)
	jm.mu.Lock()
	for {
		if j.state == Cancelling {
			jm.finishCancelLocked(j)
			jm.mu.Unlock()
			return
		}
		if j.state.Terminal() {
			jm.mu.Unlock()
			return
		}
		free, total := 0, 0
		for _, tm := range jm.tms {
			free += tm.free
			total += tm.slots
		}
		if free >= need {
			break
		}
		j.waitingFor, j.waitDeadline = need, deadline
		wait := jm.slotFreed
		jm.mu.Unlock()
		remaining := time.Until(deadline)
		select {
		case <-wait:
		case <-jm.ctx.Done():
			return
		case <-time.After(remaining):
		}
		jm.mu.Lock()
		if time.Now().After(deadline) {
			free, total = 0, 0
			for _, tm := range jm.tms {
				free += tm.free
				total += tm.slots
			}
			if free < need {
				j.cause = fmt.Sprintf("not enough task slots: the job needs %d (its highest parallelism), the cluster has %d free of %d after waiting %s (slot.request.timeout)", need, free, total, timeout)
				if jm.resourceProblem != "" {
					j.cause += "; " + jm.resourceProblem
				}
				jm.log.Error("job failed", "job", j.id, "err", j.cause)
				j.setState(Failed, time.Now())
				jm.mu.Unlock()
				return
			}
		}
	}
	j.waitingFor = 0
	// What this attempt restores: the latest retained checkpoint, else the
	// savepoint the job started from.
	var ckptSettings *controlpb.CheckpointSettings
	var restoreSettings *controlpb.RestoreSettings
	if j.ckpt != nil {
		cp, ok := jm.restorePointLocked(j)
		if !ok {
			j.cause = refusedList(j.ckpt)
			jm.log.Error("job failed", "job", j.id, "err", j.cause)
			j.setState(Failed, time.Now())
			jm.mu.Unlock()
			return
		}
		j.ckpt.restoring = cp
		if cp != nil {
			j.ckpt.coord.Restored(cp)
			jm.log.Info("job restores", "job", j.id, "attempt", j.attempt, "checkpoint", cp.ID, "savepoint", cp.Savepoint, "path", cp.ExternalPath())
		}
		ckptSettings, restoreSettings = jm.deploymentCheckpointing(j, cp)
	}
	// Place sharing groups on the TM with the most free slots, so subtasks
	// spread over TaskManagers.
	groups := make([]*taskManager, need)
	for g := range groups {
		var best *taskManager
		for _, tm := range jm.sortedTMs() {
			if tm.free > 0 && (best == nil || tm.free > best.free) {
				best = tm
			}
		}
		best.free--
		j.slots[best.id]++
		groups[g] = best
		running := map[int]bool{}
		for _, v := range j.plan.Vertices {
			if g < v.Parallelism {
				running[v.ID] = true
			}
		}
		j.held[slotGroup{best, j.attempt, g}] = running
	}
	j.tasks = map[taskKey]*task{}
	edges := map[int]*dataflow.Edge{}
	for _, e := range j.plan.Edges {
		edges[e.ID] = e
	}
	parallelism := map[int]int{}
	for _, v := range j.plan.Vertices {
		parallelism[v.ID] = v.Parallelism
	}
	type deployment struct {
		tm *taskManager
		d  *controlpb.TaskDeployment
	}
	var deps []deployment
	tokenSets := map[*taskManager]*controlpb.TokenSet{}
	for _, tm := range groups {
		if _, done := tokenSets[tm]; done {
			continue
		}
		ts, err := jm.deploymentTokens(j, tm)
		if err != nil {
			// Nothing deployed yet: give the slots back and fail without restarting, as a
			// restart would place the job on the same TaskManagers.
			for g := range j.held {
				if g.attempt == j.attempt {
					clear(j.held[g])
				}
			}
			jm.releaseSlotsLocked(j)
			j.cause, j.unrecoverable = err.Error(), true
			jm.recordFailureLocked(j, &failure{time: time.Now(), attempt: j.attempt, message: err.Error(), unrecoverable: true})
			jm.log.Error("job failed", "job", j.id, "err", j.cause)
			j.setState(Failed, time.Now())
			jm.mu.Unlock()
			return
		}
		tokenSets[tm] = ts
	}
	for _, v := range j.plan.Vertices {
		for s := 0; s < v.Parallelism; s++ {
			tm := groups[s]
			j.tasks[taskKey{v.ID, s}] = &task{vertex: v.ID, subtask: s, tm: tm.id, state: TaskDeploying}
			d := &controlpb.TaskDeployment{
				JobId: j.id, Attempt: int32(j.attempt), Vertex: int32(v.ID), Subtask: int32(s),
				SpecBlob: j.specKey, Parameters: j.params, Files: j.files,
				DefaultParallelism: int32(j.parallelism), InputChannels: int32(j.plan.InputChannels(v.ID)),
				BlobAddress: jm.blobAddr, FileGrants: fileGrants(j.access),
				ExpressionMaxCost: jm.set.MaxExpressionCost, MaxParallelism: int32(j.plan.MaxParallelism),
				Checkpoints: ckptSettings, Restore: restoreSettings,
				AutoWatermarkIntervalMs: j.cfg.Duration("pipeline.auto-watermark-interval").Milliseconds(),
				StateTtlMs:              jm.jobConfig(j).Duration("state.ttl").Milliseconds(),
				Tokens:                  tokenSets[tm],
			}
			// The gate's channel layout, so the TaskManager numbers channels as the plan does
			// and a two-input operator (a join) knows which input each channel feeds.
			for _, g := range j.plan.InputLayout(v.ID) {
				d.Inputs = append(d.Inputs, &controlpb.InputGroup{Edge: int32(g.Edge), Channels: int32(g.Channels), Forward: g.Forward, Input: int32(g.Input)})
			}
			for _, eid := range v.OutEdges {
				e := edges[eid]
				oe := &controlpb.OutputEdge{Edge: int32(e.ID), TargetVertex: int32(e.Target), TargetParallelism: int32(parallelism[e.Target])}
				for _, ts := range j.plan.Targets(e.ID, s) {
					oe.Targets = append(oe.Targets, &controlpb.OutputTarget{Subtask: int32(ts), DataAddress: groups[ts].dataAddr})
				}
				d.Outputs = append(d.Outputs, oe)
			}
			deps = append(deps, deployment{tm, d})
		}
	}
	j.setState(Running, time.Now())
	attempt := j.attempt
	jm.log.Info("job scheduled", "job", j.id, "attempt", attempt, "tasks", len(deps), "slots", need)
	jm.mu.Unlock()

	var wg sync.WaitGroup
	for _, dep := range deps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(jm.ctx, 30*time.Second)
			defer cancel()
			if _, err := dep.tm.client.DeployTask(ctx, dep.d); err != nil {
				jm.mu.Lock()
				defer jm.mu.Unlock()
				jm.unreachableLocked(dep.tm, err)
				// The TaskManager refused the task: nothing runs in its slot. After a
				// timeout it may have taken it; then its report of the end frees the slot.
				if status.Code(err) != codes.DeadlineExceeded {
					jm.taskEndedLocked(j, dep.tm, attempt, int(dep.d.Vertex), int(dep.d.Subtask))
				}
				if j.attempt != attempt {
					return
				}
				if t := j.tasks[taskKey{int(dep.d.Vertex), int(dep.d.Subtask)}]; t != nil && !taskTerminal(t.state) {
					t.state, t.err, t.end = TaskFailed, err.Error(), time.Now()
				}
				jm.taskFailedLocked(j, fmt.Sprintf("deploy task %d/%d to taskmanager %s: %v", dep.d.Vertex, dep.d.Subtask, dep.tm.id, err))
			}
		}()
	}
	wg.Wait()
}

var taskStateNames = map[controlpb.TaskState]string{
	controlpb.TaskState_DEPLOYING: TaskDeploying,
	controlpb.TaskState_RUNNING:   TaskRunning,
	controlpb.TaskState_FINISHED:  TaskFinished,
	controlpb.TaskState_CANCELED:  TaskCanceled,
	controlpb.TaskState_FAILED:    TaskFailed,
}

// taskStateChanged applies a TaskManager's report about one task.
func (jm *JobManager) taskStateChanged(u *controlpb.TaskStateUpdate) {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, ok := jm.jobs[u.JobId]
	if !ok {
		return
	}
	state, ok := taskStateNames[u.State]
	if !ok {
		return
	}
	if taskTerminal(state) {
		// Whatever the job's state and attempt: the task's goroutine has returned, so its
		// slot may be free now. Only this report frees it.
		if tm, ok := jm.tms[u.TaskmanagerId]; ok {
			jm.taskEndedLocked(j, tm, int(u.Attempt), int(u.Vertex), int(u.Subtask))
		}
	}
	if int(u.Attempt) != j.attempt {
		return
	}
	t, ok := j.tasks[taskKey{int(u.Vertex), int(u.Subtask)}]
	if !ok || taskTerminal(t.state) || t.tm != u.TaskmanagerId {
		return
	}
	jm.applyMetricsLocked(u.Metrics)
	now := time.Now()
	t.state = state
	switch state {
	case TaskRunning:
		t.start = now
		if j.state == Running {
			jm.attemptRunningLocked(j)
		}
	case TaskFinished:
		t.end = now
		if j.state == Running && j.allTasksTerminal() && j.ckpt != nil && j.ckpt.cancelOnStop {
			// Every task ended on a cancel-job savepoint.
			jm.attemptEndedLocked(j)
			jm.finishCancelLocked(j)
		} else if j.state == Running && j.allTasksTerminal() {
			jm.attemptEndedLocked(j)
			jm.releaseSlotsLocked(j)
			j.setState(Finished, now)
			jm.log.Info("job finished", "job", j.id, "name", j.name, "duration", now.Sub(j.start).Round(time.Millisecond))
		} else if j.state == Cancelling && j.allTasksTerminal() {
			jm.finishCancelLocked(j)
		}
	case TaskCanceled:
		t.end = now
		if j.state == Running {
			// A task canceled without being asked: its TaskManager
			// gave it up (for example it lost the JobManager).
			jm.taskFailedLocked(j, fmt.Sprintf("task %s (subtask %d) on taskmanager %s was canceled by its taskmanager", vertexName(j, t.vertex), t.subtask, t.tm))
		} else if j.state == Cancelling && j.allTasksTerminal() {
			jm.finishCancelLocked(j)
		}
	case TaskFailed:
		t.end, t.err = now, u.Error
		if rf := u.RestoreFailure; rf != nil && j.ckpt != nil && j.ckpt.restoring != nil && rf.CheckpointId == j.ckpt.restoring.ID {
			// A file of the checkpoint this attempt restores failed
			// verification: the next attempt restores an older one.
			j.ckpt.restoring = nil
			jm.refuseLocked(j, rf.CheckpointId, fmt.Sprintf("file %s: %s", rf.File, rf.Reason))
		}
		f := &failure{
			time: now, attempt: j.attempt, task: fmt.Sprintf("%s (%d/%d)", vertexName(j, t.vertex), t.subtask+1, vertexParallelism(j, t.vertex)),
			tm: t.tm, message: u.Error, peer: u.CausedByPeer, unrecoverable: u.Unrecoverable,
		}
		if tm, ok := jm.tms[t.tm]; ok {
			f.location = tm.dataAddr
		}
		jm.failLocked(j, f)
	}
}

func vertexParallelism(j *job, id int) int {
	for _, v := range j.plan.Vertices {
		if v.ID == id {
			return v.Parallelism
		}
	}
	return 0
}

func vertexName(j *job, id int) string {
	for _, v := range j.plan.Vertices {
		if v.ID == id {
			return v.Name
		}
	}
	return fmt.Sprint(id)
}

// taskEndedLocked records that a task no longer runs on tm and frees its slot once no task of
// the slot runs.
func (jm *JobManager) taskEndedLocked(j *job, tm *taskManager, attempt, vertex, subtask int) {
	g := slotGroup{tm, attempt, subtask}
	running, ok := j.held[g]
	if !ok {
		return
	}
	delete(running, vertex)
	jm.releaseSlotsLocked(j)
}

// releaseSlotsLocked frees the job's slots in which no task runs any more, and forgets those
// of TaskManagers that are gone. A slot with a task its TaskManager has not reported ended
// stays taken, whatever the job's state.
func (jm *JobManager) releaseSlotsLocked(j *job) {
	freed := false
	for g, running := range j.held {
		alive := jm.tms[g.tm.id] == g.tm
		if alive && len(running) > 0 {
			continue
		}
		delete(j.held, g)
		if !alive {
			continue // removeTMLocked dropped its slots already
		}
		g.tm.free = min(g.tm.free+1, g.tm.slots)
		if j.slots[g.tm.id]--; j.slots[g.tm.id] <= 0 {
			delete(j.slots, g.tm.id)
		}
		freed = true
	}
	if freed {
		jm.signalSlots()
	}
}

// runningTasksLocked names the tasks of the job that have not ended on their TaskManagers.
func (jm *JobManager) runningTasksLocked(j *job) []string {
	var out []string
	for g, running := range j.held {
		for v := range running {
			out = append(out, fmt.Sprintf("%s (subtask %d, attempt %d) on taskmanager %s", vertexName(j, v), g.subtask, g.attempt, g.tm.id))
		}
	}
	slices.Sort(out)
	return out
}

// cancelTasksLocked asks every TaskManager of the current attempt to cancel
// its tasks. The calls run in the background.
func (jm *JobManager) cancelTasksLocked(j *job) *sync.WaitGroup {
	var wg sync.WaitGroup
	attempt := j.attempt
	seen := map[string]bool{}
	for _, t := range j.tasks {
		if seen[t.tm] {
			continue
		}
		seen[t.tm] = true
		tm, ok := jm.tms[t.tm]
		if !ok {
			continue
		}
		wg.Add(1)
		started := jm.spawn(func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(jm.ctx, 5*time.Second)
			defer cancel()
			if _, err := tm.client.CancelJob(ctx, &controlpb.CancelJobRequest{JobId: j.id, Attempt: int32(attempt)}); err != nil {
				jm.log.Warn("cancel tasks", "job", j.id, "taskmanager", tm.id, "err", err)
				jm.mu.Lock()
				jm.unreachableLocked(tm, err)
				jm.mu.Unlock()
			}
		})
		if !started {
			wg.Done() // shutting down: the TaskManagers cancel what they lose
		}
	}
	return &wg
}

// taskFailedLocked handles a failure of the current attempt that is not
// one task's own (a lost TaskManager, a failed deployment).
func (jm *JobManager) taskFailedLocked(j *job, cause string) {
	jm.failLocked(j, &failure{time: time.Now(), attempt: j.attempt, message: cause})
}

// failLocked handles a failure of the current attempt: record it, cancel
// the rest, then restart after the configured delay or fail.
func (jm *JobManager) failLocked(j *job, f *failure) {
	switch j.state {
	case Cancelling:
		if j.allTasksTerminal() {
			jm.finishCancelLocked(j)
		}
		return
	case Failing:
		// Already failing: the failure joins the attempt's history, and
		// becomes the job's cause if it is the root of the one that came
		// first.
		jm.recordFailureLocked(j, f)
		return
	case Running, Created:
	default:
		return
	}
	// How long the attempt ran: a job that ran long enough before failing
	// restarts from the initial backoff (exponential-delay).
	var ran time.Duration
	if j.state == Running {
		ran = f.time.Sub(j.timestamps[Running])
	}
	jm.recordFailureLocked(j, f)
	jm.log.Warn("job failing", "job", j.id, "attempt", j.attempt, "err", j.cause)
	jm.attemptEndedLocked(j)
	j.setState(Failing, time.Now())
	wg := jm.cancelTasksLocked(j)
	jm.releaseSlotsLocked(j)
	attempt := j.attempt
	jm.spawn(func() {
		wg.Wait()
		jm.awaitAttemptEnded(j, attempt, time.Second)
		jm.mu.Lock()
		defer jm.mu.Unlock()
		if j.attempt != attempt {
			return
		}
		if j.state == Cancelling {
			jm.finishCancelLocked(j)
			return
		}
		if j.state != Failing {
			return
		}
		if j.unrecoverable {
			jm.log.Error("job failed; no restart: a restart cannot cure its cause", "job", j.id, "err", j.cause, "restarts", j.restarts)
			j.setState(Failed, time.Now())
			return
		}
		delay, restart := jm.restartBackoff(j).next(ran)
		if !restart {
			jm.log.Error("job failed", "job", j.id, "err", j.cause, "restarts", j.restarts, "restart-strategy", j.restart.Strategy)
			j.setState(Failed, time.Now())
			return
		}
		j.setState(Restarting, time.Now())
		jm.log.Info("job restarting", "job", j.id, "restart", j.restarts+1, "delay", delay, "restart-strategy", j.restart.Strategy)
		jm.after(delay, func() {
			jm.mu.Lock()
			if j.state != Restarting {
				if j.state == Cancelling {
					jm.finishCancelLocked(j)
				}
				jm.mu.Unlock()
				return
			}
			j.attempt++
			j.restarts++
			j.tasks = map[taskKey]*task{}
			j.setState(Created, time.Now())
			jm.mu.Unlock()
			jm.startAttempt(j)
		})
	})
}

// awaitAttemptEnded waits, at most max, until every task of the attempt
// has reported its end: the failure that caused the others may be
// reported after them, and it decides between restarting and failing.
func (jm *JobManager) awaitAttemptEnded(j *job, attempt int, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		jm.mu.Lock()
		done := j.attempt != attempt || j.allTasksTerminal()
		jm.mu.Unlock()
		if done {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jobConfig is the job's configuration: the cluster's with the job's own
// settings, or the cluster's for a job built without them.
func (jm *JobManager) jobConfig(j *job) *config.Config {
	if j.cfg != nil {
		return j.cfg
	}
	return jm.cfg
}

// restartBackoff returns the job's restart strategy state, made from its
// configuration for a job built without Submit.
func (jm *JobManager) restartBackoff(j *job) *restartBackoff {
	if j.backoff == nil {
		cfg := jm.jobConfig(j)
		ckpt, _ := CheckpointSettingsFromConfig(cfg)
		j.restart, _ = RestartSettingsFromConfig(cfg, ckpt.Enabled())
		j.backoff = newRestartBackoff(j.restart)
	}
	return j.backoff
}

func (jm *JobManager) finishCancelLocked(j *job) {
	now := time.Now()
	for _, t := range j.tasks {
		if !taskTerminal(t.state) {
			t.state, t.end = TaskCanceled, now
		}
	}
	jm.releaseSlotsLocked(j)
	j.setState(Canceled, now)
	jm.log.Info("job canceled", "job", j.id)
}

// ErrNoSuchJob is returned for an unknown job id.
var ErrNoSuchJob = errors.New("no such job")

// ErrJobTerminal is returned when cancelling a job that already ended.
var ErrJobTerminal = errors.New("job already ended")

// Cancel asks a job to stop; it ends CANCELED once its tasks stopped.
func (jm *JobManager) Cancel(id string) error {
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, ok := jm.jobs[id]
	if !ok {
		return fmt.Errorf("job %s: %w", id, ErrNoSuchJob)
	}
	if j.state.Terminal() {
		return fmt.Errorf("job %s is %s: %w", id, j.state, ErrJobTerminal)
	}
	if j.state == Cancelling {
		return nil
	}
	prev := j.state
	j.setState(Cancelling, time.Now())
	jm.log.Info("job cancelling", "job", id)
	switch prev {
	case Created, Restarting:
		jm.finishCancelLocked(j)
		return nil
	case Failing:
		return nil // the failover goroutine finishes it
	}
	jm.attemptEndedLocked(j)
	jm.cancelTasksLocked(j)
	jm.watchCancelLocked(j, j.attempt)
	return nil
}

// cancelRetry is how often a job still cancelling is asked again to stop.
const cancelRetry = 10 * time.Second

// watchCancelLocked asks again, every cancelRetry, the TaskManagers whose tasks have not
// reported their end. The job stays CANCELLING meanwhile: CANCELED means nothing of it runs.
// A TaskManager that does not answer is declared lost by the heartbeat monitor, which ends
// its tasks.
func (jm *JobManager) watchCancelLocked(j *job, attempt int) {
	jm.after(cancelRetry, func() {
		jm.mu.Lock()
		defer jm.mu.Unlock()
		if j.state != Cancelling || j.attempt != attempt {
			return
		}
		jm.log.Warn("job still cancelling: tasks have not stopped; asking their taskmanagers again", "job", j.id, "tasks", jm.runningTasksLocked(j))
		jm.cancelTasksLocked(j)
		jm.watchCancelLocked(j, attempt)
	})
}

// Wait blocks until the job ends or ctx is done and returns its state.
func (jm *JobManager) Wait(ctx context.Context, id string) (JobState, string, error) {
	jm.mu.Lock()
	j, ok := jm.jobs[id]
	res, ended := jm.results[id]
	jm.mu.Unlock()
	if !ok && ended {
		// Ended under a previous leader (high availability).
		return JobState(res.State), res.Cause, nil
	}
	if !ok {
		return "", "", fmt.Errorf("job %s: %w", id, ErrNoSuchJob)
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	return j.state, j.cause, nil
}
