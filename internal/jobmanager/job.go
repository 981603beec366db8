package jobmanager

import (
	"sort"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/config"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/security/authz"
)

// JobState is the state of a job, with Flink's names.
type JobState string

// Job states. CANCELED is spelled as Flink spells it.
const (
	Created    JobState = "CREATED"
	Running    JobState = "RUNNING"
	Finished   JobState = "FINISHED"
	Cancelling JobState = "CANCELLING"
	Canceled   JobState = "CANCELED"
	Failing    JobState = "FAILING"
	Failed     JobState = "FAILED"
	Restarting JobState = "RESTARTING"
)

// Terminal reports whether a job in state s will never change again.
func (s JobState) Terminal() bool { return s == Finished || s == Canceled || s == Failed }

// Task states as reported by TaskManagers.
const (
	TaskScheduled = "SCHEDULED"
	TaskDeploying = "DEPLOYING"
	TaskRunning   = "RUNNING"
	TaskFinished  = "FINISHED"
	TaskCanceled  = "CANCELED"
	TaskFailed    = "FAILED"
)

func taskTerminal(s string) bool { return s == TaskFinished || s == TaskCanceled || s == TaskFailed }

type taskKey struct{ vertex, subtask int }

// slotGroup is one slot held by a job: subtask i of every vertex of an attempt shares slot i.
// It names the TaskManager incarnation, so a slot of one that re-registered is never freed
// on the new one.
type slotGroup struct {
	tm      *taskManager
	attempt int
	subtask int
}

// task is one subtask of the current attempt of a job.
type task struct {
	vertex, subtask int
	tm              string
	state           string
	err             string
	metrics         taskMetrics
	start, end      time.Time
	// samples are the task's recent back-pressure and idle counters, oldest
	// first, for the ratios of GET .../backpressure.
	samples []pressureSample
}

type taskMetrics struct {
	readRecords, readBytes, writeRecords, writeBytes, backPressuredMS int64
	// idleMS is the time the subtask's input waited for data.
	idleMS int64
	// alignmentNS is the alignment time of the subtask's last checkpoint.
	alignmentNS int64
	// lateDropped is the subtask's numLateRecordsDropped (windows).
	lateDropped int64
	// The subtask's watermarks (ms) when hasInWM / hasOutWM. Summed over a vertex by add,
	// they are the least of its subtasks', and inWMs / outWMs count the subtasks having one.
	inWM, outWM       int64
	hasInWM, hasOutWM bool
	subtasks          int
	inWMs, outWMs     int
}

// vertexWatermarks are a vertex's currentInputWatermark and currentOutputWatermark, as Flink
// shows them: the least of its subtasks', once every subtask has one.
func (m *taskMetrics) vertexWatermarks() (in, out int64, hasIn, hasOut bool) {
	return m.inWM, m.outWM, m.subtasks > 0 && m.inWMs == m.subtasks, m.subtasks > 0 && m.outWMs == m.subtasks
}

func (m *taskMetrics) add(o taskMetrics) {
	m.readRecords += o.readRecords
	m.readBytes += o.readBytes
	m.writeRecords += o.writeRecords
	m.writeBytes += o.writeBytes
	m.backPressuredMS += o.backPressuredMS
	m.idleMS += o.idleMS
	m.lateDropped += o.lateDropped
	// A vertex's alignment is its slowest subtask's, as in Flink's
	// checkpoint statistics: a sum over subtasks means nothing.
	m.alignmentNS = max(m.alignmentNS, o.alignmentNS)
	m.subtasks++
	if o.hasInWM {
		if m.inWMs++; m.inWMs == 1 || o.inWM < m.inWM {
			m.inWM = o.inWM
		}
	}
	if o.hasOutWM {
		if m.outWMs++; m.outWMs == 1 || o.outWM < m.outWM {
			m.outWM = o.outWM
		}
	}
}

// job is the JobManager's record of a submitted job. Guarded by JobManager.mu.
type job struct {
	id          string
	name        string
	spec        []byte
	specKey     string
	params      map[string]string
	files       map[string]string     // attached file name -> blob key
	access      []dataflow.FileAccess // the files the job may touch, sent with every deployment
	parallelism int                   // job default parallelism
	plan        *dataflow.Plan
	acl         authz.JobACL      // owner and view/modify lists
	cfg         *config.Config    // the cluster's configuration with the job's own settings
	settings    map[string]string // the job's own settings, as submitted

	checkpoints   CheckpointSettings // read from cfg at submit
	checkpointDir string             // <state.checkpoints.dir>/<id>, created at submit; "" without checkpointing
	restart       RestartSettings    // read from cfg at submit
	backoff       *restartBackoff    // decides each restart; nil for a job built without Submit
	// savepointPath is the directory of the savepoint the job starts from
	// ("" for none), checked at submit to hold a _metadata file.
	savepointPath         string
	allowNonRestoredState bool

	state      JobState
	start, end time.Time
	modified   time.Time
	timestamps map[JobState]time.Time
	attempt    int
	restarts   int
	cause      string
	causeTime  time.Time
	// unrecoverable: the cause is a failure a restart cannot cure.
	unrecoverable bool
	failures      []*attemptFailures // newest last, at most exceptionHistorySize

	tasks map[taskKey]*task
	slots map[string]int // TM id -> slots held by the job (any attempt)
	// held are the slots the job holds, each with the tasks in it that have not ended on
	// their TaskManager yet. A slot is free again only once its TaskManager reported every
	// one of them ended (or is gone): a task that was asked to stop may still be running.
	held map[slotGroup]map[int]bool
	// done is closed when the job reaches a terminal state.
	done chan struct{}

	// waitingFor is how many slots the job waits for before it can be scheduled (0: it
	// does not wait), until waitDeadline (slot.request.timeout): GET /jobs/{id} says so.
	waitingFor   int
	waitDeadline time.Time
	// warnings are the job's warnings at submit (Submitted.Warnings).
	warnings []string
	// ckpt is the job's checkpoint coordinator; nil for a job built without Submit.
	ckpt *jobCheckpointing
	// output is what the job's print sinks printed, for sluice run to show.
	output *outputBuffer
}

func (j *job) setState(s JobState, now time.Time) {
	j.state = s
	j.modified = now
	j.timestamps[s] = now
	if s.Terminal() {
		j.end = now
		if j.ckpt != nil && j.ckpt.coord != nil {
			// Retention decides what stays of the job's checkpoints.
			final := checkpoint.JobFailed
			switch s {
			case Finished:
				final = checkpoint.JobFinished
			case Canceled:
				final = checkpoint.JobCanceled
			}
			j.ckpt.coord.Close(final)
		}
		select {
		case <-j.done:
		default:
			close(j.done)
		}
	}
}

func (j *job) sortedTasks() []*task {
	out := make([]*task, 0, len(j.tasks))
	for _, t := range j.tasks {
		out = append(out, t)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].vertex != out[b].vertex {
			return out[a].vertex < out[b].vertex
		}
		return out[a].subtask < out[b].subtask
	})
	return out
}

// allTasksIn reports whether every task of the current attempt is terminal.
func (j *job) allTasksTerminal() bool {
	for _, t := range j.tasks {
		if !taskTerminal(t.state) {
			return false
		}
	}
	return true
}

func (j *job) countTasks() map[string]int {
	c := map[string]int{}
	for _, t := range j.tasks {
		c[t.state]++
	}
	return c
}
