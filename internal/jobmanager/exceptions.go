package jobmanager

import (
	"fmt"
	"net/http"
	"time"
)

// exceptionHistorySize bounds the failures kept per job (Flink's
// web.exception-history-size default).
const exceptionHistorySize = 16

// failure is one task failure.
type failure struct {
	time     time.Time
	attempt  int
	task     string // vertex name and subtask, "counts (2/4)"
	tm       string // TaskManager id
	location string // the TaskManager's data address
	message  string
	// peer: the task failed because a peer task failed or went away, so
	// another failure of the attempt is the cause when there is one.
	peer bool
	// unrecoverable: a restart cannot cure it.
	unrecoverable bool
}

// attemptFailures are the failures of one attempt: its root cause, and
// the failures that came with it.
type attemptFailures struct {
	root       *failure
	concurrent []*failure
}

// cause is the failure as the job's failure cause reads.
func (f *failure) cause() string {
	if f.task == "" {
		return f.message
	}
	return fmt.Sprintf("task %s on taskmanager %s failed: %s", f.task, f.tm, f.message)
}

// recordFailureLocked adds a task failure of the current attempt to the
// job's history and makes the attempt's root cause the job's cause. The
// root cause is the first failure that a peer did not cause: whichever
// task reports first, a missing input file is the cause and the
// "connection lost" of its consumers the symptom.
func (jm *JobManager) recordFailureLocked(j *job, f *failure) {
	var af *attemptFailures
	if n := len(j.failures); n > 0 && j.failures[n-1].root.attempt == f.attempt {
		af = j.failures[n-1]
	} else {
		af = &attemptFailures{root: f}
		j.failures = append(j.failures, af)
		if len(j.failures) > exceptionHistorySize {
			j.failures = j.failures[len(j.failures)-exceptionHistorySize:]
		}
	}
	switch {
	case af.root == f:
	case af.root.peer && !f.peer:
		af.concurrent = append([]*failure{af.root}, af.concurrent...)
		af.root = f
	default:
		af.concurrent = append(af.concurrent, f)
	}
	if af.root == f {
		j.cause, j.causeTime, j.unrecoverable = f.cause(), f.time, f.unrecoverable
	}
}

// Flink's /jobs/{id}/exceptions answer.
type jobExceptions struct {
	RootException    string             `json:"root-exception,omitempty"`
	Timestamp        int64              `json:"timestamp,omitempty"`
	AllExceptions    []exceptionInfo    `json:"all-exceptions"`
	Truncated        bool               `json:"truncated"`
	ExceptionHistory jobExceptionsTrail `json:"exceptionHistory"`
}

type jobExceptionsTrail struct {
	Entries   []rootExceptionInfo `json:"entries"`
	Truncated bool                `json:"truncated"`
}

type exceptionInfo struct {
	ExceptionName string `json:"exceptionName"`
	Stacktrace    string `json:"stacktrace"`
	Timestamp     int64  `json:"timestamp"`
	TaskName      string `json:"taskName,omitempty"`
	Location      string `json:"location,omitempty"`
	Endpoint      string `json:"endpoint,omitempty"`
	TaskManagerID string `json:"taskManagerId,omitempty"`
	// sluice's own: whether a peer caused it, and whether the job's
	// restarts were suppressed because of it.
	CausedByPeer  bool `json:"causedByPeer"`
	Unrecoverable bool `json:"unrecoverable"`
}

type rootExceptionInfo struct {
	exceptionInfo
	ConcurrentExceptions []exceptionInfo `json:"concurrentExceptions"`
}

func (f *failure) info() exceptionInfo {
	name := "TaskFailure"
	switch {
	case f.unrecoverable:
		name = "UnrecoverableTaskFailure"
	case f.peer:
		name = "PeerTaskFailure"
	}
	return exceptionInfo{
		ExceptionName: name, Stacktrace: f.message, Timestamp: f.time.UnixMilli(),
		TaskName: f.task, Location: f.location, Endpoint: f.location, TaskManagerID: f.tm,
		CausedByPeer: f.peer, Unrecoverable: f.unrecoverable,
	}
}

// exceptions answers GET /jobs/{id}/exceptions.
func (rs *restServer) jobExceptions(w http.ResponseWriter, r *http.Request) {
	jm := rs.jm
	j := rs.lockedJob(w, r)
	if j == nil {
		return
	}
	out := jobExceptions{
		RootException:    j.cause,
		AllExceptions:    []exceptionInfo{},
		ExceptionHistory: jobExceptionsTrail{Entries: []rootExceptionInfo{}},
	}
	if !j.causeTime.IsZero() {
		out.Timestamp = j.causeTime.UnixMilli()
	}
	// Newest first, as Flink lists them.
	for i := len(j.failures) - 1; i >= 0; i-- {
		af := j.failures[i]
		e := rootExceptionInfo{exceptionInfo: af.root.info(), ConcurrentExceptions: []exceptionInfo{}}
		for _, c := range af.concurrent {
			e.ConcurrentExceptions = append(e.ConcurrentExceptions, c.info())
		}
		out.ExceptionHistory.Entries = append(out.ExceptionHistory.Entries, e)
		out.AllExceptions = append(out.AllExceptions, e.exceptionInfo)
		out.AllExceptions = append(out.AllExceptions, e.ConcurrentExceptions...)
	}
	jm.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}
