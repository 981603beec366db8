package jobmanager

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/restapi"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

// Keys bounding what the JobManager keeps of each job's printed output.
const (
	outputMaxLinesKey      = "jobmanager.job-output.max-lines"
	outputMaxBytesKey      = "jobmanager.job-output.max-bytes"
	outputMaxTotalBytesKey = "jobmanager.job-output.max-total-bytes"
)

// maxOutputLine is the longest line kept: a longer record is cut, so that one record cannot
// take a job's whole buffer or an answer's.
const maxOutputLine = 64 << 10

// outputPage bounds one answer of GET /jobs/{id}/output; a client behind asks again.
const (
	outputPageLines = 5000
	outputPageBytes = 2 << 20
)

// outputBuffer keeps the last lines the print sinks of a job printed (sluice run follows
// them), within a line and a byte bound: when full it drops its oldest lines. Offsets count
// every line the buffer accepted, so a reader that fell behind sees how many it lost: the
// lines it asked for start later than it asked. Guarded by JobManager.mu.
type outputBuffer struct {
	lines []string // lines[0] is at offset first
	first int64
	bytes int
	// undelivered counts the lines TaskManagers dropped before they reached the buffer.
	undelivered        int64
	maxLines, maxBytes int
}

func newOutputBuffer(maxLines, maxBytes int) *outputBuffer {
	return &outputBuffer{maxLines: maxLines, maxBytes: maxBytes}
}

// end is the offset after the last line.
func (b *outputBuffer) end() int64 { return b.first + int64(len(b.lines)) }

// add appends lines, after upstreamDropped lines the sender could not send.
func (b *outputBuffer) add(lines []string, upstreamDropped int64) {
	b.undelivered += upstreamDropped
	for _, l := range lines {
		b.lines = append(b.lines, l)
		b.bytes += len(l)
		for len(b.lines) > 0 && (len(b.lines) > b.maxLines || b.bytes > b.maxBytes) {
			b.bytes -= len(b.lines[0])
			b.lines[0] = "" // the backing array must not keep it alive
			b.lines = b.lines[1:]
			b.first++
		}
	}
}

// discard drops every line kept; offsets go on from where they were.
func (b *outputBuffer) discard() {
	b.first = b.end()
	b.lines, b.bytes = nil, 0
}

// read returns the lines from offset on (from the oldest kept, when those at offset were
// dropped), at most maxLines of at most maxBytes together, and the offset to read next.
func (b *outputBuffer) read(offset int64, maxLines, maxBytes int) ([]string, int64) {
	offset = min(max(offset, b.first), b.end())
	out := []string{}
	size := 0
	for i := int(offset - b.first); i < len(b.lines) && len(out) < maxLines; i++ {
		if size += len(b.lines[i]); size > maxBytes && len(out) > 0 {
			break
		}
		out = append(out, b.lines[i])
	}
	return out, offset + int64(len(out))
}

// cleanOutputLine makes a line from a TaskManager safe to pass on: one line, no control
// characters (a TaskManager escapes them already; the JobManager does not rely on it), at
// most maxOutputLine bytes.
func cleanOutputLine(l string) string {
	l = dataflow.EscapeLine(l)
	if len(l) <= maxOutputLine {
		return l
	}
	cut := maxOutputLine
	for cut > 0 && !utf8.RuneStart(l[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… [%d bytes cut]", l[:cut], len(l)-cut)
}

func (s *rpcServer) ReportOutput(ctx context.Context, o *controlpb.TaskOutput) (*controlpb.Ack, error) {
	if err := s.jm.acceptOutput(o); err != nil {
		return nil, err
	}
	return &controlpb.Ack{}, nil
}

// acceptOutput keeps a batch of printed lines in the job's buffer. Only the TaskManager the
// task of the job's current attempt is deployed on may send them: another TaskManager
// cannot put lines into a job it does not run. (With internal TLS the caller's certificate
// must name the TaskManager the batch claims to come from.)
func (jm *JobManager) acceptOutput(o *controlpb.TaskOutput) error {
	// Cleaned before taking the lock the whole JobManager shares.
	lines := make([]string, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = cleanOutputLine(l)
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	j, ok := jm.jobs[o.JobId]
	if !ok {
		return status.Errorf(codes.NotFound, "job %s: no such job", o.JobId)
	}
	if int(o.Attempt) != j.attempt {
		// A task of an earlier attempt flushing late: its lines are stale.
		return status.Errorf(codes.FailedPrecondition, "job %s attempt %d is over (current attempt %d): output not kept", o.JobId, o.Attempt, j.attempt)
	}
	t, ok := j.tasks[taskKey{int(o.Vertex), int(o.Subtask)}]
	if !ok || t.tm != o.TaskmanagerId {
		jm.log.Warn("output refused: the task does not run on the sending taskmanager", "job", o.JobId, "attempt", o.Attempt,
			"vertex", o.Vertex, "subtask", o.Subtask, "taskmanager", o.TaskmanagerId)
		return status.Errorf(codes.PermissionDenied, "taskmanager %s runs no task %d/%d of job %s attempt %d: output refused", o.TaskmanagerId, o.Vertex, o.Subtask, o.JobId, o.Attempt)
	}
	j.output.add(lines, max(o.Dropped, 0))
	jm.trimOutputsLocked()
	return nil
}

// trimOutputsLocked drops the output of ended jobs, oldest first, while all jobs together keep
// more than jobmanager.job-output.max-total-bytes: finished jobs stay in the job store for
// jobstore.expiration-time, and their output must not add up without bound meanwhile. The
// output of running jobs is bounded by the slots they hold.
func (jm *JobManager) trimOutputsLocked() {
	limit := jm.set.OutputMaxTotalBytes
	total := 0
	var ended []*job
	for _, j := range jm.jobs {
		if j.output == nil {
			continue
		}
		total += j.output.bytes
		if j.state.Terminal() && j.output.bytes > 0 {
			ended = append(ended, j)
		}
	}
	if total <= limit {
		return
	}
	slices.SortFunc(ended, func(a, b *job) int { return a.end.Compare(b.end) })
	for _, j := range ended {
		if total <= limit {
			break
		}
		total -= j.output.bytes
		j.output.discard()
	}
}

// jobOutput is GET /jobs/{id}/output?offset=N: the printed lines from offset N on (from the
// oldest kept when those are gone: the buffer keeps the last jobmanager.job-output.max-lines),
// the offset to ask for next, and "dropped", the lines that never reached the buffer (a
// TaskManager drops lines while the JobManager is slow or away).
func (rs *restServer) jobOutput(w http.ResponseWriter, r *http.Request) {
	var offset int64
	if v := r.URL.Query().Get("offset"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "offset %q: want a line offset >= 0 (next-offset of the previous answer)", v)
			return
		}
		offset = n
	}
	j := rs.lockedJob(w, r)
	if j == nil {
		return
	}
	defer rs.jm.mu.Unlock()
	lines, next := j.output.read(offset, outputPageLines, outputPageBytes)
	writeJSON(w, http.StatusOK, restapi.JobOutput{Lines: lines, NextOffset: next, Dropped: j.output.undelivered})
}

// pendingReasonLocked says why a job waits to be scheduled, or "" when it does not wait.
func (jm *JobManager) pendingReasonLocked(j *job, now time.Time) string {
	if j.waitingFor == 0 || j.state != Created {
		return ""
	}
	free, total := 0, 0
	for _, tm := range jm.tms {
		free += tm.free
		total += tm.slots
	}
	var b strings.Builder
	fmt.Fprintf(&b, "waiting for %d slots, %d available", j.waitingFor, free)
	if total == 0 {
		b.WriteString(": no TaskManager registered")
	} else {
		fmt.Fprintf(&b, " of %d", total)
	}
	fmt.Fprintf(&b, " (fails in %s: slot.request.timeout)", max(j.waitDeadline.Sub(now), 0).Round(time.Second))
	return b.String()
}
