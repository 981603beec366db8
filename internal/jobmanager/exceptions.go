package jobmanager

import (
	"fmt"
	"net/http"
	"time"

	"github.com/sluice-dev/sluice/internal/restapi"
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

func (f *failure) info() restapi.ExceptionInfo {
	name := "TaskFailure"
	switch {
	case f.unrecoverable:
		name = "UnrecoverableTaskFailure"
	case f.peer:
		name = "PeerTaskFailure"
	}
	return restapi.ExceptionInfo{
		ExceptionName: name, Stacktrace: f.message, Timestamp: f.time.UnixMilli(),
		TaskName: f.task, Location: f.location, Endpoint: f.location, TaskManagerID: f.tm,
		CausedByPeer: f.peer, Unrecoverable: f.unrecoverable, FailureLabels: map[string]string{},
	}
}

// exceptions answers GET /jobs/{id}/exceptions.
func (rs *restServer) jobExceptions(w http.ResponseWriter, r *http.Request) {
	jm := rs.jm
	j := rs.lockedJob(w, r)
	if j == nil {
		return
	}
	out := restapi.JobExceptions{
		RootException:    j.cause,
		AllExceptions:    []restapi.ExceptionInfo{},
		ExceptionHistory: restapi.ExceptionHistory{Entries: []restapi.RootExceptionInfo{}},
	}
	if !j.causeTime.IsZero() {
		out.Timestamp = j.causeTime.UnixMilli()
	}
	// Newest first, as Flink lists them.
	for i := len(j.failures) - 1; i >= 0; i-- {
		af := j.failures[i]
		e := restapi.RootExceptionInfo{ExceptionInfo: af.root.info(), ConcurrentExceptions: []restapi.ExceptionInfo{}}
		for _, c := range af.concurrent {
			e.ConcurrentExceptions = append(e.ConcurrentExceptions, c.info())
		}
		out.ExceptionHistory.Entries = append(out.ExceptionHistory.Entries, e)
		out.AllExceptions = append(out.AllExceptions, e.ExceptionInfo)
		out.AllExceptions = append(out.AllExceptions, e.ConcurrentExceptions...)
	}
	jm.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}
