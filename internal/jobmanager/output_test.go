package jobmanager

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-dev/sluice/internal/dataflow"
	controlpb "github.com/sluice-dev/sluice/internal/rpc/proto"
)

func lineRange(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("line %d", i))
	}
	return out
}

// TestOutputBufferBounds: the buffer keeps the newest lines within its line and byte
// bounds, offsets keep counting, and a reader behind the oldest kept line sees the gap.
func TestOutputBufferBounds(t *testing.T) {
	b := newOutputBuffer(5, 1<<20)
	b.add(lineRange(0, 3), 0)
	got, next := b.read(0, 100, 1<<20)
	if strings.Join(got, ",") != "line 0,line 1,line 2" || next != 3 {
		t.Fatalf("read 0: %q next %d", got, next)
	}
	// Past the line bound: the oldest go, offsets stay.
	b.add(lineRange(3, 9), 2)
	if len(b.lines) != 5 || b.first != 4 || b.end() != 9 {
		t.Fatalf("after 9 lines with max 5: %d kept from %d to %d", len(b.lines), b.first, b.end())
	}
	if b.undelivered != 2 {
		t.Errorf("undelivered %d, want the 2 the sender reported", b.undelivered)
	}
	// A reader at offset 3 lost line 3: it gets lines 4..8, and 9-3-5 = 1 line is the gap.
	got, next = b.read(3, 100, 1<<20)
	if len(got) != 5 || got[0] != "line 4" || next != 9 {
		t.Fatalf("read 3: %q next %d", got, next)
	}
	if gap := next - int64(len(got)) - 3; gap != 1 {
		t.Errorf("gap %d, want 1 lost line", gap)
	}
	// Caught up, and an offset past the end: nothing, next is the end.
	for _, off := range []int64{9, 1000} {
		got, next = b.read(off, 100, 1<<20)
		if len(got) != 0 || next != 9 {
			t.Errorf("read %d: %q next %d, want nothing and 9", off, got, next)
		}
	}
	// Pages: by lines, and by bytes (but always at least one line).
	got, next = b.read(4, 2, 1<<20)
	if len(got) != 2 || next != 6 {
		t.Errorf("page of 2 lines: %q next %d", got, next)
	}
	got, next = b.read(4, 100, 13)
	if len(got) != 2 || next != 6 {
		t.Errorf("page of 13 bytes (6 each): %q next %d", got, next)
	}
	got, _ = b.read(4, 100, 1)
	if len(got) != 1 {
		t.Errorf("page smaller than a line: %q, want that one line", got)
	}

	// The byte bound.
	bb := newOutputBuffer(1000, 20)
	bb.add([]string{"0123456789", "0123456789", "0123456789"}, 0)
	if bb.bytes > 20 || len(bb.lines) != 2 || bb.first != 1 {
		t.Errorf("byte bound 20: %d bytes in %d lines from %d", bb.bytes, len(bb.lines), bb.first)
	}
	// A line larger than the whole buffer is not kept, but it is counted.
	bb.add([]string{strings.Repeat("x", 21)}, 0)
	if len(bb.lines) != 0 || bb.bytes != 0 || bb.end() != 4 {
		t.Errorf("a line over the byte bound: %d lines, %d bytes, end %d", len(bb.lines), bb.bytes, bb.end())
	}
	// max-lines 0 keeps nothing.
	none := newOutputBuffer(0, 1<<20)
	none.add(lineRange(0, 3), 0)
	if len(none.lines) != 0 || none.end() != 3 {
		t.Errorf("max-lines 0: kept %d, end %d", len(none.lines), none.end())
	}
}

func TestCleanOutputLine(t *testing.T) {
	if got := cleanOutputLine("forged\nlevel=ERROR \x1b[2J"); got != `forged\nlevel=ERROR \u001b[2J` {
		t.Errorf("control characters: %q", got)
	}
	long := strings.Repeat("é", maxOutputLine) // 2 bytes each
	got := cleanOutputLine(long)
	if len(got) > maxOutputLine+64 || !strings.Contains(got, "bytes cut]") || !strings.HasPrefix(got, "éé") {
		t.Errorf("long line: %d bytes, ends %q", len(got), got[len(got)-40:])
	}
	if !strings.HasPrefix(got, strings.Repeat("é", maxOutputLine/2)) {
		t.Error("cut inside a character")
	}
}

// outputJob registers a running job whose task 0/0 runs on tm-a.
func outputJob(t *testing.T, jm *JobManager) *job {
	t.Helper()
	j := &job{id: "job1", name: "job1", state: Running, attempt: 1, timestamps: map[JobState]time.Time{}, done: make(chan struct{}),
		tasks:  map[taskKey]*task{{0, 0}: {vertex: 0, subtask: 0, tm: "tm-a", state: TaskRunning}},
		output: newOutputBuffer(jm.cfg.Int(outputMaxLinesKey), int(jm.cfg.Bytes(outputMaxBytesKey))),
		plan:   &dataflow.Plan{},
	}
	jm.jobs[j.id] = j
	return j
}

// TestAcceptOutputOnlyFromTheTaskManagerOfTheTask: lines are kept only from the TaskManager
// the task of the current attempt runs on, and escaped on the way in.
func TestAcceptOutputOnlyFromTheTaskManagerOfTheTask(t *testing.T) {
	jm := newTestJM(t, nil)
	j := outputJob(t, jm)
	for _, tc := range []struct {
		name string
		o    *controlpb.TaskOutput
		code codes.Code
	}{
		{"another taskmanager", &controlpb.TaskOutput{TaskmanagerId: "tm-b", JobId: "job1", Attempt: 1, Lines: []string{"forged"}}, codes.PermissionDenied},
		{"a task that does not exist", &controlpb.TaskOutput{TaskmanagerId: "tm-a", JobId: "job1", Attempt: 1, Vertex: 7, Lines: []string{"forged"}}, codes.PermissionDenied},
		{"an earlier attempt", &controlpb.TaskOutput{TaskmanagerId: "tm-a", JobId: "job1", Attempt: 0, Lines: []string{"stale"}}, codes.FailedPrecondition},
		{"an unknown job", &controlpb.TaskOutput{TaskmanagerId: "tm-a", JobId: "nope", Attempt: 1, Lines: []string{"x"}}, codes.NotFound},
	} {
		err := jm.acceptOutput(tc.o)
		if status.Code(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if j.output.end() != 0 {
		t.Fatalf("refused lines were kept: %q", j.output.lines)
	}
	if err := jm.acceptOutput(&controlpb.TaskOutput{TaskmanagerId: "tm-a", JobId: "job1", Attempt: 1, Lines: []string{"ok", "a\x1b]0;owned\x07b"}, Dropped: 3}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(j.output.lines, "|") != `ok|a\u001b]0;owned\u0007b` || j.output.undelivered != 3 {
		t.Errorf("kept %q, undelivered %d", j.output.lines, j.output.undelivered)
	}

	// GET /jobs/{id}/output answers from the offset.
	rs := jm.newREST(nil)
	rec := httptest.NewRecorder()
	rs.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/jobs/job1/output?offset=1", nil))
	var ans struct {
		Lines      []string `json:"lines"`
		NextOffset int64    `json:"next-offset"`
		Dropped    int64    `json:"dropped"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if len(ans.Lines) != 1 || ans.NextOffset != 2 || ans.Dropped != 3 {
		t.Errorf("answer %+v", ans)
	}
	rec = httptest.NewRecorder()
	rs.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/jobs/job1/output?offset=-1", nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "next-offset") {
		t.Errorf("negative offset: %d %s", rec.Code, rec.Body)
	}
}

// TestPendingReason: while a job waits for slots, GET /jobs/{id} says how many it waits for
// and how many there are.
func TestPendingReason(t *testing.T) {
	jm := newTestJM(t, map[string]string{"slot.request.timeout": "5 min"})
	j := outputJob(t, jm)
	j.state = Created
	now := time.Now()
	j.waitingFor, j.waitDeadline = 4, now.Add(4*time.Minute)
	if got := jm.pendingReasonLocked(j, now); !strings.HasPrefix(got, "waiting for 4 slots, 0 available: no TaskManager registered") || !strings.Contains(got, "slot.request.timeout") {
		t.Errorf("no taskmanager: %q", got)
	}
	jm.tms["tm-a"] = &taskManager{id: "tm-a", slots: 2, free: 2}
	if got := jm.pendingReasonLocked(j, now); !strings.HasPrefix(got, "waiting for 4 slots, 2 available of 2") || !strings.Contains(got, "4m0s") {
		t.Errorf("one taskmanager: %q", got)
	}
	j.state = Running
	if got := jm.pendingReasonLocked(j, now); got != "" {
		t.Errorf("running: %q, want none", got)
	}
}

// TestOutputTotalBound: beyond max-total-bytes the output of ended jobs goes, oldest first;
// a running job keeps its own.
func TestOutputTotalBound(t *testing.T) {
	jm := newTestJM(t, map[string]string{"jobmanager.job-output.max-total-bytes": "100b"})
	now := time.Now()
	mk := func(id string, s JobState, end time.Time, n int) *job {
		j := &job{id: id, state: s, end: end, tasks: map[taskKey]*task{{0, 0}: {tm: "tm-a"}}, output: newOutputBuffer(1000, 1<<20)}
		j.output.add([]string{strings.Repeat("x", n)}, 0)
		jm.jobs[id] = j
		return j
	}
	oldest := mk("oldest", Finished, now.Add(-time.Hour), 40)
	older := mk("older", Canceled, now.Add(-time.Minute), 40)
	running := mk("running", Running, time.Time{}, 10)
	if err := jm.acceptOutput(&controlpb.TaskOutput{TaskmanagerId: "tm-a", JobId: "running", Lines: []string{strings.Repeat("y", 30)}}); err != nil {
		t.Fatal(err)
	}
	if oldest.output.bytes != 0 || oldest.output.end() != 1 {
		t.Errorf("the oldest ended job keeps %d bytes (end %d), want its output dropped, offsets kept", oldest.output.bytes, oldest.output.end())
	}
	if older.output.bytes != 40 || running.output.bytes != 40 {
		t.Errorf("older %d bytes, running %d bytes; want both kept (80 <= 100)", older.output.bytes, running.output.bytes)
	}
}
