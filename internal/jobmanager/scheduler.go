package jobmanager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
	"github.com/sluice-dev/sluice/internal/security/authz"
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
}

// Submit validates a job, stores its artifacts and schedules it. It returns
// the job id; errors wrapping ErrBadSubmission are the client's to fix.
func (jm *JobManager) Submit(s Submission) (string, error) {
	spec, err := dataflow.ParseSpec(s.Spec, s.Params)
	if err != nil {
		return "", &SubmissionError{err}
	}
	par := s.Parallelism
	if par <= 0 {
		par = jm.cfg.Int("parallelism.default")
	}
	plan, err := spec.Plan(par)
	if err != nil {
		return "", &SubmissionError{err}
	}
	// Held until the job is registered, so the blob collector cannot
	// delete these blobs (they may equal a removed job's) before then.
	jm.blobMu.Lock()
	defer jm.blobMu.Unlock()
	specKey, err := jm.blobs.Put(s.Spec)
	if err != nil {
		return "", err
	}
	files := map[string]string{}
	for name, data := range s.Files {
		k, err := jm.blobs.Put(data)
		if err != nil {
			return "", err
		}
		files[name] = k
	}
	now := time.Now()
	j := &job{
		id: newID(16), name: plan.Name, spec: s.Spec, specKey: specKey,
		params: s.Params, files: files, parallelism: par, plan: plan, acl: s.ACL,
		start: now, timestamps: map[JobState]time.Time{}, tasks: map[taskKey]*task{},
		slots: map[string]int{}, done: make(chan struct{}),
	}
	j.setState(Created, now)
	jm.mu.Lock()
	jm.jobs[j.id] = j
	jm.mu.Unlock()
	jm.log.Info("job submitted", "job", j.id, "name", j.name, "owner", s.ACL.Owner, "parallelism", par, "vertices", len(plan.Vertices))
	go jm.startAttempt(j)
	return j.id, nil
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
	timeout := jm.cfg.Duration("slot.request.timeout")
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
				jm.log.Error("job failed", "job", j.id, "cause", j.cause)
				j.setState(Failed, time.Now())
				jm.mu.Unlock()
				return
			}
		}
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
	for _, v := range j.plan.Vertices {
		for s := 0; s < v.Parallelism; s++ {
			tm := groups[s]
			j.tasks[taskKey{v.ID, s}] = &task{vertex: v.ID, subtask: s, tm: tm.id, state: TaskDeploying}
			d := &controlpb.TaskDeployment{
				JobId: j.id, Attempt: int32(j.attempt), Vertex: int32(v.ID), Subtask: int32(s),
				SpecBlob: j.specKey, Parameters: j.params, Files: j.files,
				DefaultParallelism: int32(j.parallelism), InputChannels: int32(j.plan.InputChannels(v.ID)),
				BlobAddress: jm.blobAddr,
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
	if !ok || int(u.Attempt) != j.attempt {
		return
	}
	t, ok := j.tasks[taskKey{int(u.Vertex), int(u.Subtask)}]
	if !ok || taskTerminal(t.state) || t.tm != u.TaskmanagerId {
		return
	}
	state, ok := taskStateNames[u.State]
	if !ok {
		return
	}
	jm.applyMetricsLocked(u.Metrics)
	now := time.Now()
	t.state = state
	switch state {
	case TaskRunning:
		t.start = now
	case TaskFinished:
		t.end = now
		if j.state == Running && j.allTasksTerminal() {
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
		jm.taskFailedLocked(j, fmt.Sprintf("task %s (subtask %d) on taskmanager %s failed: %s", vertexName(j, t.vertex), t.subtask, t.tm, u.Error))
	}
}

func vertexName(j *job, id int) string {
	for _, v := range j.plan.Vertices {
		if v.ID == id {
			return v.Name
		}
	}
	return fmt.Sprint(id)
}

func (jm *JobManager) releaseSlotsLocked(j *job) {
	for id, n := range j.slots {
		if tm, ok := jm.tms[id]; ok {
			tm.free += n
			if tm.free > tm.slots {
				tm.free = tm.slots
			}
		}
	}
	j.slots = map[string]int{}
	jm.signalSlots()
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
		go func(tm *taskManager) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(jm.ctx, 5*time.Second)
			defer cancel()
			if _, err := tm.client.CancelJob(ctx, &controlpb.CancelJobRequest{JobId: j.id, Attempt: int32(attempt)}); err != nil {
				jm.log.Warn("cancel tasks", "job", j.id, "taskmanager", tm.id, "err", err)
				jm.mu.Lock()
				jm.unreachableLocked(tm, err)
				jm.mu.Unlock()
			}
		}(tm)
	}
	return &wg
}

// taskFailedLocked handles the failure of a task of the current attempt:
// cancel the rest, then restart after the configured delay or fail.
func (jm *JobManager) taskFailedLocked(j *job, cause string) {
	switch j.state {
	case Cancelling:
		if j.allTasksTerminal() {
			jm.finishCancelLocked(j)
		}
		return
	case Running, Created:
	default:
		return
	}
	j.cause = cause
	jm.log.Warn("job failing", "job", j.id, "attempt", j.attempt, "cause", cause)
	j.setState(Failing, time.Now())
	wg := jm.cancelTasksLocked(j)
	jm.releaseSlotsLocked(j)
	attempt := j.attempt
	go func() {
		wg.Wait()
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
		if !jm.mayRestart(j) {
			jm.log.Error("job failed", "job", j.id, "cause", j.cause, "restarts", j.restarts)
			j.setState(Failed, time.Now())
			return
		}
		j.setState(Restarting, time.Now())
		delay := jm.cfg.Duration("restart-strategy.fixed-delay.delay")
		jm.log.Info("job restarting", "job", j.id, "restart", j.restarts+1, "delay", delay)
		time.AfterFunc(delay, func() {
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
	}()
}

func (jm *JobManager) mayRestart(j *job) bool {
	switch strings.ToLower(jm.cfg.String("restart-strategy.type")) {
	case "fixed-delay", "fixeddelay":
		return j.restarts < jm.cfg.Int("restart-strategy.fixed-delay.attempts")
	}
	return false
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
	jm.cancelTasksLocked(j)
	attempt := j.attempt
	// Tasks whose TaskManager does not answer must not keep the job in
	// CANCELLING forever.
	time.AfterFunc(10*time.Second, func() {
		jm.mu.Lock()
		defer jm.mu.Unlock()
		if j.state == Cancelling && j.attempt == attempt {
			jm.finishCancelLocked(j)
		}
	})
	return nil
}

// Wait blocks until the job ends or ctx is done and returns its state.
func (jm *JobManager) Wait(ctx context.Context, id string) (JobState, string, error) {
	jm.mu.Lock()
	j, ok := jm.jobs[id]
	jm.mu.Unlock()
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
