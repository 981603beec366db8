package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// fakeClock is a Clock tests drive: timers fire only in Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	// settle runs after each timer fired, so its effects happen at the
	// timer's time, not at the end of the Advance.
	settle func()
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.UnixMilli(1718000000000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves time on by d, firing the timers due in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.stopped && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		next.stopped = true
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
		if c.settle != nil {
			c.settle()
		}
	}
}

type trigger struct {
	attempt int
	b       event.Barrier
	target  string
}

type notify struct {
	attempt   int
	id        int64
	completed bool
}

// fakeGateway records what the coordinator asks of the JobManager.
type fakeGateway struct {
	mu sync.Mutex
	gwCalls
	triggerErr error
}

// gwCalls are the calls a fakeGateway received.
type gwCalls struct {
	triggers  []trigger
	notifies  []notify
	failovers []string
	finished  []int
	stopped   []Operation
}

func (g *fakeGateway) Trigger(_ context.Context, attempt int, b event.Barrier, target string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.triggers = append(g.triggers, trigger{attempt, b, target})
	return g.triggerErr
}

func (g *fakeGateway) Notify(_ context.Context, attempt int, id int64, completed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.notifies = append(g.notifies, notify{attempt, id, completed})
}

func (g *fakeGateway) FailOver(attempt int, cause string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failovers = append(g.failovers, cause)
}

func (g *fakeGateway) Finished(attempt int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.finished = append(g.finished, attempt)
}

func (g *fakeGateway) Stopped(attempt int, op *Operation) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = append(g.stopped, *op)
}

func (g *fakeGateway) lastTrigger(t *testing.T) trigger {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.triggers) == 0 {
		t.Fatal("nothing triggered")
	}
	return g.triggers[len(g.triggers)-1]
}

func (g *fakeGateway) numTriggers() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.triggers)
}

func (g *fakeGateway) snapshot() gwCalls {
	g.mu.Lock()
	defer g.mu.Unlock()
	return gwCalls{
		triggers: slices.Clone(g.triggers), notifies: slices.Clone(g.notifies), failovers: slices.Clone(g.failovers),
		finished: slices.Clone(g.finished), stopped: slices.Clone(g.stopped),
	}
}

// settle waits until the coordinator has handled everything posted to it
// and the Gateway calls that follow from it have been made.
func settle(c *Coordinator) {
	for range 3 {
		c.call(func() {})
		done := make(chan struct{})
		c.out.push(func(context.Context) { close(done) })
		select {
		case <-done:
		case <-c.out.done:
		}
	}
}

const maxP = 128

// The job: a source "gen" (vertex 0) and a keyed "sum" (vertex 1), both at
// parallelism 2, on two TaskManagers.
var (
	jobOperators = []OperatorInfo{
		{Name: "gen", Type: "generator", Vertex: 0, Parallelism: 2},
		{Name: "sum", Type: "aggregate", Vertex: 1, Parallelism: 2},
	}
)

func tasksOf(attempt int) (tasks, sources []TaskRef) {
	for v := range 2 {
		for s := range 2 {
			t := TaskRef{TaskManagerID: fmt.Sprintf("tm-%d", s), Attempt: attempt, Vertex: v, Subtask: s}
			tasks = append(tasks, t)
			if v == 0 {
				sources = append(sources, t)
			}
		}
	}
	return tasks, sources
}

type harness struct {
	t     *testing.T
	c     *Coordinator
	gw    *fakeGateway
	clock *fakeClock
	store *JobStorage
}

func newHarness(t *testing.T, mod func(*CoordinatorConfig)) *harness {
	t.Helper()
	store, err := OpenJobStorage(filepath.Join(t.TempDir(), "ckpt"), testJob, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, gw: &fakeGateway{}, clock: newFakeClock(), store: store}
	cfg := CoordinatorConfig{
		JobID: testJob, JobName: "stateful", MaxParallelism: maxP, Operators: jobOperators,
		Interval: time.Second, Timeout: time.Minute, NumRetained: 1, Storage: store, Clock: h.clock,
	}
	if mod != nil {
		mod(&cfg)
	}
	h.c, err = NewCoordinator(cfg, h.gw)
	if err != nil {
		t.Fatal(err)
	}
	h.clock.settle = func() { settle(h.c) }
	t.Cleanup(func() {
		h.c.Close(JobFailed)
		select {
		case <-h.c.out.done:
		case <-time.After(10 * time.Second):
			t.Error("the coordinator's Gateway goroutine did not end")
		}
	})
	return h
}

func (h *harness) run(attempt int) {
	tasks, sources := tasksOf(attempt)
	h.c.AttemptRunning(attempt, tasks, sources)
	settle(h.c)
}

func (h *harness) advance(d time.Duration) {
	h.clock.Advance(d)
	settle(h.c)
}

// ack is subtask s of vertex v acknowledging checkpoint id, with files
// where a checkpoint (or, if dir is "", a savepoint) puts them.
func ack(attempt, v, s int, id int64, savepoint bool) Ack {
	name := func(kind string) string {
		f := StateFile(v*2, s, kind)
		if savepoint {
			return f
		}
		return CheckpointFile(id, f)
	}
	a := Ack{
		Task: TaskRef{TaskManagerID: fmt.Sprintf("tm-%d", s), Attempt: attempt, Vertex: v, Subtask: s}, CheckpointID: id,
		Operators: map[string]SubtaskState{},
		Metrics: AckMetrics{
			SyncDuration: time.Millisecond, AsyncDuration: 2 * time.Millisecond,
			AlignmentDuration: time.Duration(1000 * (v + 1)), StateSize: 100, CheckpointedSize: 60,
		},
	}
	if v == 0 {
		a.Operators["gen"] = SubtaskState{Operator: &ListsHandle{
			File:  FileRef{Path: name(KindOperator), Size: 10, SHA256: sum64},
			Lists: []ListInfo{{Name: "splits", Mode: ModeSplit, Count: 64}},
		}}
	} else {
		r := keygroup.RangeOf(s, 2, maxP)
		a.Operators["sum"] = SubtaskState{Keyed: &KeyedHandle{
			Format: FormatKGStream, KeyGroups: r, Offsets: make([]int64, r.Len()),
			States: []StateInfo{{Name: "acc", Kind: "value"}},
			Files:  []FileRef{{Path: name(KindKeyed), Size: 10, SHA256: sum64}},
		}}
	}
	return a
}

// ackAll acknowledges id by every subtask of attempt.
func (h *harness) ackAll(attempt int, id int64, savepoint, finished bool) {
	h.t.Helper()
	for v := range 2 {
		for s := range 2 {
			a := ack(attempt, v, s, id, savepoint)
			a.Finished = finished
			if err := h.c.Acknowledge(a); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	settle(h.c)
}

func (h *harness) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(h.store.Dir(), rel))
	return err == nil
}

func TestCoordinatorPeriodicCheckpoint(t *testing.T) {
	h := newHarness(t, nil)
	h.run(1)
	h.advance(999 * time.Millisecond)
	if n := h.gw.numTriggers(); n != 0 {
		t.Fatalf("%d triggers before the interval", n)
	}
	h.advance(time.Millisecond)
	tr := h.gw.lastTrigger(t)
	if tr.attempt != 1 || tr.b.ID != 1 || tr.b.Type != event.Checkpoint || tr.target != "" || tr.b.Timestamp != h.clock.Now().UnixMilli() {
		t.Fatalf("trigger %+v", tr)
	}
	if !h.exists("chk-1") {
		t.Fatal("chk-1 not created at the trigger")
	}
	if s := h.c.Stats(); s.Counts.InProgress != 1 || s.History[0].Status != StatusInProgress {
		t.Fatalf("stats while pending: %+v", s.Counts)
	}
	h.advance(250 * time.Millisecond)
	h.ackAll(1, 1, false, false)
	g := h.gw.snapshot()
	if !slices.Equal(g.notifies, []notify{{1, 1, true}}) {
		t.Fatalf("notifies %v", g.notifies)
	}
	cc, err := h.store.ReadMetadata(1)
	if err != nil {
		t.Fatal(err)
	}
	m := cc.Meta
	if m.JobName != "stateful" || len(m.Operators) != 2 || m.Operators[1].Subtasks[1].Keyed == nil || m.Finished || m.Sealing != SealingSHA256 {
		t.Fatalf("metadata %+v", m)
	}
	if rp := h.c.RestorePoint(); rp == nil || rp.ID != 1 || rp.MetadataSHA256 != cc.MetadataSHA256 || rp.Root != h.store.Dir() {
		t.Fatalf("restore point %+v", rp)
	}
	s := h.c.Stats()
	if s.Counts != (Counts{Total: 1, Completed: 1}) {
		t.Fatalf("counts %+v", s.Counts)
	}
	c := s.Latest.Completed
	if c == nil || c.EndToEndDuration != 250 || c.StateSize != 400 || c.CheckpointedSize != 240 || c.AlignmentDuration != 2000 ||
		c.NumAcknowledgedSubtasks != 4 || c.NumSubtasks != 4 || c.ExternalPath != "file:"+filepath.Join(h.store.Dir(), "chk-1") {
		t.Fatalf("latest completed %+v", c)
	}
	mt := s.Metrics()
	if mt.LastCheckpointDuration != 250 || mt.LastCheckpointSize != 240 || mt.NumberOfCompletedCheckpoints != 1 || mt.TotalNumberOfCheckpoints != 1 {
		t.Fatalf("metrics %+v", mt)
	}
	// The next one an interval after the last trigger.
	h.advance(749 * time.Millisecond)
	if h.gw.numTriggers() != 1 {
		t.Fatal("triggered before the interval")
	}
	h.advance(time.Millisecond)
	if tr := h.gw.lastTrigger(t); tr.b.ID != 2 {
		t.Fatalf("second trigger %+v", tr)
	}
}

func TestCoordinatorOneInFlight(t *testing.T) {
	h := newHarness(t, nil)
	h.run(1)
	h.advance(10 * time.Second) // far past several intervals: still one
	if n := h.gw.numTriggers(); n != 1 {
		t.Fatalf("%d triggers with one pending", n)
	}
	h.ackAll(1, 1, false, false)
	// The interval has passed since the trigger: the next goes at once.
	if tr := h.gw.lastTrigger(t); tr.b.ID != 2 {
		t.Fatalf("after completion: %+v", tr)
	}
}

func TestCoordinatorMinPause(t *testing.T) {
	h := newHarness(t, func(c *CoordinatorConfig) { c.MinPause = 3 * time.Second })
	h.run(1)
	h.advance(time.Second) // trigger at 1 s
	h.advance(500 * time.Millisecond)
	h.ackAll(1, 1, false, false) // completes at 1.5 s
	h.advance(2999 * time.Millisecond)
	if n := h.gw.numTriggers(); n != 1 {
		t.Fatalf("triggered %d times before min-pause ended", n)
	}
	h.advance(time.Millisecond) // 4.5 s
	if tr := h.gw.lastTrigger(t); tr.b.ID != 2 {
		t.Fatalf("after min-pause: %+v", tr)
	}
}

func TestCoordinatorDeclineAndTolerableFailures(t *testing.T) {
	h := newHarness(t, func(c *CoordinatorConfig) { c.TolerableFailures = 1 })
	h.run(1)
	decline := func(id int64) {
		h.c.Decline(Decline{Task: TaskRef{TaskManagerID: "tm-1", Attempt: 1, Vertex: 0, Subtask: 1}, CheckpointID: id, Reason: "disk full"})
		settle(h.c)
	}
	h.advance(time.Second)
	decline(1)
	if h.exists("chk-1") {
		t.Fatal("chk-1 kept after its abort")
	}
	g := h.gw.snapshot()
	if !slices.Equal(g.notifies, []notify{{1, 1, false}}) || len(g.failovers) != 0 {
		t.Fatalf("after one decline: %+v", g)
	}
	// A completion resets the count of consecutive failures.
	h.advance(time.Second)
	h.ackAll(1, 2, false, false)
	h.advance(time.Second)
	decline(3)
	if g := h.gw.snapshot(); len(g.failovers) != 0 {
		t.Fatalf("failover after a success and one failure: %v", g.failovers)
	}
	// A stale decline (wrong attempt, wrong id, unknown subtask) is ignored.
	h.advance(time.Second)
	h.c.Decline(Decline{Task: TaskRef{TaskManagerID: "tm-1", Attempt: 0, Vertex: 0, Subtask: 1}, CheckpointID: 4, Reason: "old"})
	h.c.Decline(Decline{Task: TaskRef{TaskManagerID: "tm-1", Attempt: 1, Vertex: 0, Subtask: 1}, CheckpointID: 3, Reason: "old"})
	h.c.Decline(Decline{Task: TaskRef{TaskManagerID: "tm-9", Attempt: 1, Vertex: 0, Subtask: 1}, CheckpointID: 4, Reason: "who"})
	settle(h.c)
	if s := h.c.Stats(); s.Counts.InProgress != 1 {
		t.Fatalf("a stale decline aborted checkpoint 4: %+v", s.Counts)
	}
	decline(4)
	g = h.gw.snapshot()
	want := "checkpoint 4 failed (declined by vertex 0 subtask 1: disk full); exceeded execution.checkpointing.tolerable-failed-checkpoints (1)"
	if !slices.Equal(g.failovers, []string{want}) {
		t.Fatalf("failovers %q, want %q", g.failovers, want)
	}
	// Nothing more is triggered in the failing attempt.
	n := h.gw.numTriggers()
	h.advance(10 * time.Second)
	if h.gw.numTriggers() != n {
		t.Fatal("triggered after the failover")
	}
	if s := h.c.Stats(); s.Counts.Failed != 3 || s.Latest.Failed.ID != 4 || !strings.Contains(s.Latest.Failed.FailureMessage, "disk full") {
		t.Fatalf("stats %+v %+v", s.Counts, s.Latest.Failed)
	}
}

func TestCoordinatorTimeout(t *testing.T) {
	h := newHarness(t, func(c *CoordinatorConfig) { c.Timeout = 5 * time.Second })
	h.run(1)
	h.advance(time.Second)
	h.ack1(1, 0, 0, 1)
	h.advance(4999 * time.Millisecond)
	if g := h.gw.snapshot(); len(g.notifies) != 0 {
		t.Fatalf("aborted before the timeout: %+v", g.notifies)
	}
	h.advance(time.Millisecond)
	g := h.gw.snapshot()
	want := "checkpoint 1 failed (timeout after 5s); exceeded execution.checkpointing.tolerable-failed-checkpoints (0)"
	if !slices.Equal(g.notifies, []notify{{1, 1, false}}) || !slices.Equal(g.failovers, []string{want}) {
		t.Fatalf("after the timeout: %+v", g)
	}
	s := h.c.Stats()
	if f := s.Latest.Failed; f == nil || f.FailureMessage != "timeout after 5s" || f.FailureTimestamp != h.clock.Now().UnixMilli() || f.NumAcknowledgedSubtasks != 1 {
		t.Fatalf("latest failed %+v", f)
	}
	// An acknowledgement arriving after the abort is refused.
	if err := h.c.Acknowledge(ack(1, 1, 0, 1, false)); err == nil {
		t.Fatal("acknowledgement of an aborted checkpoint accepted")
	}
}

func (h *harness) ack1(attempt, v, s int, id int64) {
	h.t.Helper()
	if err := h.c.Acknowledge(ack(attempt, v, s, id, false)); err != nil {
		h.t.Fatal(err)
	}
}

func TestCoordinatorTriggerFailure(t *testing.T) {
	h := newHarness(t, func(c *CoordinatorConfig) { c.TolerableFailures = 5 })
	h.gw.triggerErr = errors.New("taskmanager tm-1 unreachable")
	h.run(1)
	h.advance(time.Second)
	s := h.c.Stats()
	if s.Counts.Failed != 1 || !strings.Contains(s.Latest.Failed.FailureMessage, "trigger failed: taskmanager tm-1 unreachable") {
		t.Fatalf("stats %+v %+v", s.Counts, s.Latest.Failed)
	}
}

func TestCoordinatorRefusesBadAcks(t *testing.T) {
	h := newHarness(t, func(c *CoordinatorConfig) { c.TolerableFailures = 100 })
	h.run(2)
	h.advance(time.Second)
	h.ack1(2, 0, 0, 1)
	// Refused, and checkpoint 1 stays pending.
	stale := map[string]Ack{
		"wrong attempt": ack(1, 0, 1, 1, false),
		"wrong id":      ack(2, 0, 1, 7, false),
		"duplicate":     ack(2, 0, 0, 1, false),
		"unknown subtask": func() Ack {
			a := ack(2, 0, 1, 1, false)
			a.Task.Vertex = 5
			return a
		}(),
		"other taskmanager": func() Ack {
			a := ack(2, 0, 1, 1, false)
			a.Task.TaskManagerID = "tm-0"
			return a
		}(),
	}
	for name, a := range stale {
		if err := h.c.Acknowledge(a); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	settle(h.c)
	if s := h.c.Stats(); s.Counts.InProgress != 1 || s.Counts.Failed != 0 {
		t.Fatalf("a stale acknowledgement aborted the checkpoint: %+v", s.Counts)
	}

	// Refused, and the checkpoint aborted: its content cannot enter _metadata.
	bad := map[string]func(a *Ack){
		"path escaping": func(a *Ack) {
			a.Operators["gen"].Operator.File.Path = "chk-%d/../../other-job/x"
		},
		"another checkpoint's directory": func(a *Ack) { a.Operators["gen"].Operator.File.Path = "chk-999/0-1-operator" },
		"absolute path":                  func(a *Ack) { a.Operators["gen"].Operator.File.Path = "/etc/passwd" },
		"_metadata":                      func(a *Ack) { a.Operators["gen"].Operator.File.Path = "chk-%d/_metadata" },
		"shared kg-stream":               func(a *Ack) { a.Operators["gen"].Operator.File.Path = "shared/x" },
		"no digest":                      func(a *Ack) { a.Operators["gen"].Operator.File.SHA256 = "" },
		"operator of another vertex": func(a *Ack) {
			a.Operators["sum"] = SubtaskState{}
		},
		"unknown operator": func(a *Ack) { a.Operators["nope"] = SubtaskState{} },
	}
	names := make([]string, 0, len(bad))
	for n := range bad {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		id := h.gw.lastTrigger(t).b.ID
		a := ack(2, 0, 1, id, false)
		// A fresh handle, not shared with ack's map.
		op := *a.Operators["gen"].Operator
		a.Operators["gen"] = SubtaskState{Operator: &op}
		bad[name](&a)
		op.File.Path = strings.ReplaceAll(op.File.Path, "%d", fmt.Sprint(id))
		err := h.c.Acknowledge(a)
		settle(h.c)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if s := h.c.Stats(); s.Latest.Failed == nil || s.Latest.Failed.ID != id {
			t.Errorf("%s: checkpoint %d not aborted (err %v)", name, id, err)
		}
		h.advance(time.Second)
	}
	// A keyed handle with another subtask's key groups.
	id := h.gw.lastTrigger(t).b.ID
	a := ack(2, 1, 0, id, false)
	k := *a.Operators["sum"].Keyed
	k.KeyGroups = keygroup.RangeOf(1, 2, maxP)
	a.Operators["sum"] = SubtaskState{Keyed: &k}
	if err := h.c.Acknowledge(a); err == nil || !strings.Contains(err.Error(), "key-groups") {
		t.Fatalf("wrong key groups: %v", err)
	}
}

func TestCoordinatorAttemptEnded(t *testing.T) {
	h := newHarness(t, nil) // tolerable 0: an ended attempt is not a failure
	h.run(1)
	h.advance(time.Second)
	h.ack1(1, 0, 0, 1)
	h.c.AttemptEnded(1)
	settle(h.c)
	g := h.gw.snapshot()
	if len(g.failovers) != 0 || len(g.notifies) != 0 || h.exists("chk-1") {
		t.Fatalf("after the attempt ended: %+v, chk-1 exists %v", g, h.exists("chk-1"))
	}
	h.advance(5 * time.Second)
	if h.gw.numTriggers() != 1 {
		t.Fatal("triggered between attempts")
	}
	if err := h.c.Acknowledge(ack(1, 0, 1, 1, false)); err == nil {
		t.Fatal("acknowledgement of the ended attempt accepted")
	}
	h.run(2)
	h.advance(time.Second)
	if tr := h.gw.lastTrigger(t); tr.attempt != 2 || tr.b.ID != 2 {
		t.Fatalf("first trigger of attempt 2: %+v (ids never repeat)", tr)
	}
	// A late report of the old attempt does not go back in time.
	tasks, sources := tasksOf(1)
	h.c.AttemptRunning(1, tasks, sources)
	settle(h.c)
	h.ackAll(2, 2, false, false)
	if rp := h.c.RestorePoint(); rp == nil || rp.ID != 2 {
		t.Fatalf("restore point %+v", rp)
	}
}

func TestCoordinatorSavepointWhileCheckpointPending(t *testing.T) {
	h := newHarness(t, nil)
	target := filepath.Join(t.TempDir(), "sp")
	if _, err := h.c.TriggerSavepoint(SavepointRequest{Target: target, Type: event.Savepoint}); err == nil {
		t.Fatal("savepoint of a job not running accepted")
	}
	h.run(1)
	h.advance(time.Second) // checkpoint 1 pending
	req, err := h.c.TriggerSavepoint(SavepointRequest{Target: target, Type: event.Savepoint})
	if err != nil {
		t.Fatal(err)
	}
	settle(h.c)
	if op, ok := h.c.Operation(req); !ok || op.Done || h.gw.numTriggers() != 1 {
		t.Fatalf("savepoint did not wait for the pending checkpoint: %+v, %d triggers", op, h.gw.numTriggers())
	}
	h.advance(3 * time.Second) // the periodic one is due too: the savepoint goes first
	h.ackAll(1, 1, false, false)
	tr := h.gw.lastTrigger(t)
	if tr.b.ID != 2 || tr.b.Type != event.Savepoint || filepath.Dir(tr.target) != target || !strings.HasPrefix(filepath.Base(tr.target), "savepoint-5d1f2a-") {
		t.Fatalf("savepoint trigger %+v", tr)
	}
	if err := h.c.Acknowledge(ack(1, 0, 0, 2, false)); err == nil {
		t.Fatal("savepoint acknowledgement with a chk-2/ path accepted")
	}
	// That aborted it; the operation says why and its directory is gone.
	op, _ := h.c.Operation(req)
	if !op.Done || !strings.Contains(op.Failure, "savepoint 2 failed") || op.Location != "" {
		t.Fatalf("operation %+v", op)
	}
	if _, err := os.Lstat(tr.target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("failed savepoint's directory left: %v", err)
	}
	if g := h.gw.snapshot(); len(g.failovers) != 0 {
		t.Fatalf("a failed savepoint failed the job over: %v", g.failovers)
	}
	// The periodic checkpoint an interval after the savepoint's trigger.
	h.advance(time.Second)
	if tr := h.gw.lastTrigger(t); tr.b.ID != 3 || tr.b.Type != event.Checkpoint {
		t.Fatalf("after the savepoint, the periodic checkpoint: %+v", tr)
	}
	h.ackAll(1, 3, false, false)
	req, _ = h.c.TriggerSavepoint(SavepointRequest{Target: target, Type: event.Savepoint})
	settle(h.c)
	tr = h.gw.lastTrigger(t)
	if tr.b.ID != 4 || tr.b.Type != event.Savepoint {
		t.Fatalf("savepoint trigger %+v", tr)
	}
	notifies := len(h.gw.snapshot().notifies)
	h.ackAll(1, 4, true, false)
	op, _ = h.c.Operation(req)
	if !op.Done || op.Failure != "" || op.Location != "file:"+tr.target {
		t.Fatalf("operation %+v", op)
	}
	cc, err := ReadCompleted(tr.target, filepath.Join(tr.target, MetadataName), nil)
	if err != nil || cc.Meta.Type != TypeSavepoint || cc.ID != 4 {
		t.Fatalf("savepoint _metadata: %+v %v", cc, err)
	}
	if g := h.gw.snapshot(); len(g.notifies) != notifies || len(g.stopped) != 0 {
		t.Fatalf("a plain savepoint's completion was notified: %+v", g)
	}
	if rp := h.c.RestorePoint(); rp.ID != 3 {
		t.Fatalf("a savepoint became the restore point: %+v", rp)
	}
	if s := h.c.Stats(); s.Latest.Savepoint == nil || s.Latest.Savepoint.ID != 4 || !s.Latest.Savepoint.IsSavepoint || s.Latest.Completed.ID != 3 {
		t.Fatalf("stats latest %+v", s.Latest)
	}
	if _, ok := h.c.Operation("nope"); ok {
		t.Fatal("unknown operation found")
	}
}

func TestCoordinatorStopWithSavepoint(t *testing.T) {
	h := newHarness(t, func(c *CoordinatorConfig) { c.Interval = 0; c.Storage = nil })
	h.run(1)
	target := t.TempDir()
	if _, err := h.c.TriggerSavepoint(SavepointRequest{Target: "relative", Type: event.SavepointSuspend}); err == nil {
		t.Fatal("relative target accepted")
	}
	req, err := h.c.TriggerSavepoint(SavepointRequest{Target: target, Type: event.SavepointSuspend, Cancel: true})
	if err != nil {
		t.Fatal(err)
	}
	settle(h.c)
	tr := h.gw.lastTrigger(t)
	if tr.b.ID != 1 || tr.b.Type != event.SavepointSuspend {
		t.Fatalf("trigger %+v", tr)
	}
	h.ackAll(1, 1, true, false)
	g := h.gw.snapshot()
	if !slices.Equal(g.notifies, []notify{{1, 1, true}}) || len(g.stopped) != 1 || !g.stopped[0].Request.Cancel || g.stopped[0].Location != "file:"+tr.target {
		t.Fatalf("after a suspending savepoint: %+v", g)
	}
	if op, _ := h.c.Operation(req); op.Location != "file:"+tr.target {
		t.Fatalf("operation %+v", op)
	}
}

func TestCoordinatorEndOfData(t *testing.T) {
	h := newHarness(t, func(c *CoordinatorConfig) { c.Interval = time.Hour })
	h.run(1)
	_, sources := tasksOf(1)
	h.c.EndOfData(1, sources[0])
	h.c.EndOfData(0, sources[1]) // stale attempt: ignored
	settle(h.c)
	if h.gw.numTriggers() != 0 {
		t.Fatal("triggered before every source ended")
	}
	h.c.EndOfData(1, sources[1])
	settle(h.c)
	if tr := h.gw.lastTrigger(t); tr.b.ID != 1 {
		t.Fatalf("no trigger at once at the end of input: %+v", tr)
	}
	// The sources have finished; the keyed tasks are still draining.
	for v := range 2 {
		for s := range 2 {
			a := ack(1, v, s, 1, false)
			a.Finished = v == 0
			if err := h.c.Acknowledge(a); err != nil {
				t.Fatal(err)
			}
		}
	}
	settle(h.c)
	if cc, _ := h.store.ReadMetadata(1); cc == nil || cc.Meta.Finished || !cc.Meta.Operators[0].Subtasks[0].Finished {
		t.Fatalf("checkpoint 1 metadata %+v", cc)
	}
	if g := h.gw.snapshot(); len(g.finished) != 0 {
		t.Fatal("finished before every subtask had")
	}
	h.advance(finalPause) // not an hour: the job is draining
	if tr := h.gw.lastTrigger(t); tr.b.ID != 2 {
		t.Fatalf("no second end-of-input checkpoint: %+v", tr)
	}
	h.ackAll(1, 2, false, true)
	cc, err := h.store.ReadMetadata(2)
	if err != nil || !cc.Meta.Finished {
		t.Fatalf("final checkpoint %+v %v", cc, err)
	}
	g := h.gw.snapshot()
	if !slices.Equal(g.finished, []int{1}) || g.notifies[len(g.notifies)-1] != (notify{1, 2, true}) {
		t.Fatalf("after the final checkpoint: %+v", g)
	}
	h.advance(2 * time.Hour)
	if h.gw.numTriggers() != 2 {
		t.Fatal("triggered after the final checkpoint")
	}
}

func TestCoordinatorRetentionAndRefuse(t *testing.T) {
	restored := &CompletedCheckpoint{ID: 41, Root: "/sp/savepoint-5d1f2a-000000000000", Metadata: "/sp/savepoint-5d1f2a-000000000000/_metadata", Savepoint: true}
	h := newHarness(t, func(c *CoordinatorConfig) { c.NumRetained = 2; c.Restored = restored })
	if rp := h.c.RestorePoint(); rp != restored {
		t.Fatalf("before any checkpoint the restore point is the starting savepoint, got %+v", rp)
	}
	h.c.Restored(restored)
	h.run(1)
	for i := range int64(3) {
		h.advance(time.Second)
		if tr := h.gw.lastTrigger(t); tr.b.ID != 42+i {
			t.Fatalf("checkpoint id %d, want %d (after the savepoint's)", tr.b.ID, 42+i)
		}
		h.ackAll(1, 42+i, false, false)
	}
	for rel, want := range map[string]bool{"chk-42": false, "chk-43": true, "chk-44": true} {
		if h.exists(rel) != want {
			t.Errorf("%s exists %v, want %v", rel, !want, want)
		}
	}
	s := h.c.Stats()
	if s.Counts.Restored != 1 || s.Latest.Restored.ID != 41 || !s.Latest.Restored.IsSavepoint || s.Latest.Restored.ExternalPath != "file:"+restored.Root {
		t.Fatalf("restored stats %+v %+v", s.Counts, s.Latest.Restored)
	}
	for _, hs := range s.History {
		if hs.Discarded != (hs.ID == 42) {
			t.Errorf("checkpoint %d discarded %v", hs.ID, hs.Discarded)
		}
	}
	if rp := h.c.RestorePoint(); rp.ID != 44 {
		t.Fatalf("restore point %d", rp.ID)
	}
	h.c.Refuse(44, "file chk-44/2-0-keyed: authentication failed")
	if rp := h.c.RestorePoint(); rp.ID != 43 {
		t.Fatalf("after refusing 44: %+v", rp)
	}
	if !h.exists("chk-44") {
		t.Fatal("a refused checkpoint's directory was deleted: it is kept for inspection")
	}
	h.c.Refuse(43, "damaged")
	if rp := h.c.RestorePoint(); rp != restored {
		t.Fatalf("after refusing 43: %+v", rp)
	}
	h.c.Refuse(41, "damaged")
	if rp := h.c.RestorePoint(); rp != nil {
		t.Fatalf("after refusing everything: %+v", rp)
	}
}

func TestCoordinatorSharedFilesRetention(t *testing.T) {
	h := newHarness(t, func(c *CoordinatorConfig) {
		c.NumRetained = 1
		c.Operators = []OperatorInfo{{Name: "gen", Type: "generator", Vertex: 0, Parallelism: 2}, {Name: "sum", Type: "aggregate", Vertex: 1, Parallelism: 2}}
	})
	h.run(1)
	// Each checkpoint's keyed subtasks write a shared file and the second
	// one also references the first's (incremental).
	write := func(rel string) {
		f, err := h.store.tree.Create(rel)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	ackPebble := func(id int64, shared ...string) {
		for v := range 2 {
			for s := range 2 {
				a := ack(1, v, s, id, false)
				if v == 1 {
					r := keygroup.RangeOf(s, 2, maxP)
					files := []FileRef{{Path: CheckpointFile(id, fmt.Sprintf("2-%d-pebble/MANIFEST", s)), Size: 1, SHA256: sum64}}
					for _, sh := range shared {
						p := SharedFile(fmt.Sprintf("%d-%s", s, sh))
						var by int64
						fmt.Sscanf(sh, "%d", &by)
						files = append(files, FileRef{Path: p, Size: 1, SHA256: sum64, SealedFor: by})
					}
					a.Operators["sum"] = SubtaskState{Keyed: &KeyedHandle{Format: FormatPebble, KeyGroups: r, States: []StateInfo{{Name: "acc", Kind: "value"}}, Files: files}}
				}
				if err := h.c.Acknowledge(a); err != nil {
					t.Fatal(err)
				}
			}
		}
		settle(h.c)
	}
	h.advance(time.Second)
	write("shared/0-1.sst")
	write("shared/1-1.sst")
	ackPebble(1, "1.sst")
	h.advance(time.Second)
	write("shared/0-2.sst")
	write("shared/1-2.sst")
	ackPebble(2, "1.sst", "2.sst")
	if h.exists("chk-1") || !h.exists("shared/0-1.sst") || !h.exists("shared/1-2.sst") {
		t.Fatal("checkpoint 2 still references checkpoint 1's shared files")
	}
	h.advance(time.Second)
	write("shared/0-3.sst")
	write("shared/1-3.sst")
	ackPebble(3, "2.sst", "3.sst")
	for rel, want := range map[string]bool{"shared/0-1.sst": false, "shared/1-1.sst": false, "shared/0-2.sst": true, "shared/1-3.sst": true, "chk-2": false, "chk-3": true} {
		if h.exists(rel) != want {
			t.Errorf("%s exists %v, want %v", rel, !want, want)
		}
	}
}

func TestCoordinatorClose(t *testing.T) {
	for _, tc := range []struct {
		state     JobState
		retention Retention
		keep      bool
	}{
		{JobFinished, RetainOnCancellation, false},
		{JobCanceled, DeleteOnCancellation, false},
		{JobCanceled, RetainOnCancellation, true},
		{JobFailed, DeleteOnCancellation, true},
	} {
		t.Run(fmt.Sprint(tc.state, tc.retention), func(t *testing.T) {
			h := newHarness(t, func(c *CoordinatorConfig) { c.Retention = tc.retention })
			h.run(1)
			h.advance(time.Second)
			h.ackAll(1, 1, false, false)
			h.advance(time.Second) // checkpoint 2 pending
			req, err := h.c.TriggerSavepoint(SavepointRequest{Target: t.TempDir(), Type: event.Savepoint})
			if err != nil {
				t.Fatal(err)
			}
			h.c.Close(tc.state)
			if _, err := os.Lstat(h.store.Dir()); (err == nil) != tc.keep {
				t.Fatalf("job directory exists %v, want %v", err == nil, tc.keep)
			}
			if tc.keep && h.exists("chk-2") {
				t.Fatal("the pending checkpoint's directory was kept")
			}
			if _, err := h.c.TriggerSavepoint(SavepointRequest{Target: t.TempDir(), Type: event.Savepoint}); err == nil {
				t.Fatal("savepoint after Close accepted")
			}
			if err := h.c.Acknowledge(ack(1, 0, 0, 2, false)); err == nil {
				t.Fatal("acknowledgement after Close accepted")
			}
			if op, _ := h.c.Operation(req); !op.Done || op.Failure == "" {
				t.Fatalf("queued savepoint after Close: %+v", op)
			}
			h.c.Close(tc.state) // idempotent
		})
	}
}

func TestCoordinatorCloseFailsQueuedSavepoints(t *testing.T) {
	h := newHarness(t, nil)
	h.run(1)
	h.advance(time.Second)
	req, err := h.c.TriggerSavepoint(SavepointRequest{Target: t.TempDir(), Type: event.Savepoint})
	if err != nil {
		t.Fatal(err)
	}
	h.c.Close(JobCanceled)
	op, ok := h.c.Operation(req)
	if !ok {
		t.Fatal("operation forgotten at Close")
	}
	if !op.Done || !strings.Contains(op.Failure, "the job ended (CANCELED)") {
		t.Fatalf("queued savepoint after Close: %+v", op)
	}
}

func TestStatsJSONShape(t *testing.T) {
	h := newHarness(t, func(c *CoordinatorConfig) { c.TolerableFailures = 10 })
	h.run(1)
	h.advance(time.Second)
	h.advance(290 * time.Millisecond)
	h.ackAll(1, 1, false, false)
	h.advance(time.Second)
	h.c.Decline(Decline{Task: TaskRef{TaskManagerID: "tm-0", Attempt: 1, Vertex: 1, Subtask: 0}, CheckpointID: 2, Reason: "x"})
	settle(h.c)
	b, err := json.Marshal(h.c.Stats())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	keysOf := func(v any) []string {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v is not an object", v)
		}
		var k []string
		for n := range m {
			k = append(k, n)
		}
		sort.Strings(k)
		return k
	}
	eq := func(what string, got []string, want ...string) {
		t.Helper()
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: keys %v, want %v", what, got, want)
		}
	}
	eq("stats", keysOf(doc), "counts", "summary", "latest", "history")
	eq("counts", keysOf(doc["counts"]), "restored", "total", "in_progress", "completed", "failed")
	summary := doc["summary"].(map[string]any)
	eq("summary", keysOf(summary), "state_size", "checkpointed_size", "end_to_end_duration", "alignment_duration")
	for _, k := range keysOf(summary) {
		eq("summary."+k, keysOf(summary[k]), "min", "max", "avg", "p50", "p90", "p95", "p99", "p999")
	}
	latest := doc["latest"].(map[string]any)
	eq("latest", keysOf(latest), "completed", "savepoint", "failed", "restored")
	if latest["savepoint"] != nil || latest["restored"] != nil {
		t.Errorf("latest savepoint/restored without one: %v %v", latest["savepoint"], latest["restored"])
	}
	eq("latest.completed", keysOf(latest["completed"]), "id", "status", "is_savepoint", "trigger_timestamp", "latest_ack_timestamp",
		"state_size", "checkpointed_size", "end_to_end_duration", "alignment_duration", "num_subtasks", "num_acknowledged_subtasks",
		"checkpoint_type", "external_path", "discarded")
	eq("latest.failed", keysOf(latest["failed"]), "id", "status", "is_savepoint", "trigger_timestamp", "latest_ack_timestamp",
		"state_size", "checkpointed_size", "end_to_end_duration", "alignment_duration", "num_subtasks", "num_acknowledged_subtasks",
		"checkpoint_type", "discarded", "failure_timestamp", "failure_message")
	c := latest["completed"].(map[string]any)
	if c["status"] != "COMPLETED" || c["checkpoint_type"] != "CHECKPOINT" || c["end_to_end_duration"] != 290.0 || c["id"] != 1.0 {
		t.Errorf("latest.completed %v", c)
	}
	if f := latest["failed"].(map[string]any); f["status"] != "FAILED" || f["id"] != 2.0 {
		t.Errorf("latest.failed %v", f)
	}
	hist := doc["history"].([]any)
	if len(hist) != 2 || hist[0].(map[string]any)["id"] != 2.0 {
		t.Errorf("history %v (newest first)", hist)
	}
	if counts := doc["counts"].(map[string]any); counts["total"] != 2.0 || counts["completed"] != 1.0 || counts["failed"] != 1.0 {
		t.Errorf("counts %v", counts)
	}
	if m := h.c.Stats().Metrics(); m.NumberOfFailedCheckpoints != 1 || m.NumberOfInProgressCheckpoints != 0 || m.LastCheckpointDuration != 290 || m.LastCheckpointRestoreTimestamp != 0 {
		t.Errorf("metrics %+v", m)
	}
}

func TestStatsHistoryAndQuantiles(t *testing.T) {
	var st statsTracker
	for i := range int64(15) {
		s := &CheckpointStats{ID: i + 1, StateSize: (i + 1) * 10, EndToEndDuration: 5}
		st.started(s)
		st.completed(s)
	}
	s := st.snapshot()
	if len(s.History) != HistorySize || s.History[0].ID != 15 || s.History[HistorySize-1].ID != 6 {
		t.Fatalf("history ids %d..%d (%d)", s.History[0].ID, s.History[len(s.History)-1].ID, len(s.History))
	}
	q := s.Summary.StateSize
	if q.Min != 10 || q.Max != 150 || q.Avg != 80 || q.P50 != 80 || q.P999 < 149 || q.P999 > 150 {
		t.Fatalf("state size quantiles %+v", q)
	}
	if e := s.Summary.EndToEndDuration; e.Min != 5 || e.P99 != 5 {
		t.Fatalf("end to end %+v", e)
	}
	var empty statsTracker
	if z := empty.snapshot().Summary.StateSize; z != (Quantiles{}) {
		t.Fatalf("empty summary %+v", z)
	}
}

func TestNewCoordinatorRefusesBadConfig(t *testing.T) {
	gw := &fakeGateway{}
	if _, err := NewCoordinator(CoordinatorConfig{JobID: testJob, Interval: time.Second}, gw); err == nil || !strings.Contains(err.Error(), "state.checkpoints.dir") {
		t.Fatalf("interval without storage: %v", err)
	}
	if _, err := NewCoordinator(CoordinatorConfig{JobID: "../x"}, gw); err == nil {
		t.Fatal("bad job id accepted")
	}
	if _, err := NewCoordinator(CoordinatorConfig{JobID: testJob, MaxParallelism: 4, Operators: []OperatorInfo{{Name: "a", Type: "map", Parallelism: 8}}}, gw); err == nil || !strings.Contains(err.Error(), "pipeline.max-parallelism") {
		t.Fatalf("parallelism above max-parallelism: %v", err)
	}
	if _, err := NewCoordinator(CoordinatorConfig{JobID: testJob, TolerableFailures: -1}, gw); err == nil {
		t.Fatal("negative tolerable failures accepted")
	}
}

// lockingGateway takes the JobManager's lock in every call, as the real
// one does.
type lockingGateway struct {
	*fakeGateway
	jm *sync.Mutex
}

func (g lockingGateway) Trigger(ctx context.Context, attempt int, b event.Barrier, target string) error {
	g.jm.Lock()
	defer g.jm.Unlock()
	return g.fakeGateway.Trigger(ctx, attempt, b, target)
}

func (g lockingGateway) Notify(ctx context.Context, attempt int, id int64, completed bool) {
	g.jm.Lock()
	defer g.jm.Unlock()
	g.fakeGateway.Notify(ctx, attempt, id, completed)
}

// TestCoordinatorCalledUnderTheJobManagersLock: the JobManager calls the
// coordinator holding its lock, and the Gateway takes that lock; nothing
// deadlocks because Gateway calls never run on the caller's path.
func TestCoordinatorCalledUnderTheJobManagersLock(t *testing.T) {
	store, err := OpenJobStorage(t.TempDir(), testJob, nil)
	if err != nil {
		t.Fatal(err)
	}
	var jm sync.Mutex
	fg := &fakeGateway{}
	clock := newFakeClock()
	c, err := NewCoordinator(CoordinatorConfig{
		JobID: testJob, MaxParallelism: maxP, Operators: jobOperators, Interval: time.Second, Storage: store, Clock: clock,
	}, lockingGateway{fg, &jm})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(JobFailed)
	tasks, sources := tasksOf(1)
	jm.Lock()
	c.AttemptRunning(1, tasks, sources)
	jm.Unlock()
	clock.Advance(time.Second)
	settle(c)
	jm.Lock()
	for v := range 2 {
		for s := range 2 {
			if err := c.Acknowledge(ack(1, v, s, 1, false)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s := c.Stats(); s.Counts.Completed != 1 {
		t.Fatalf("counts %+v", s.Counts)
	}
	jm.Unlock()
	settle(c)
	if g := fg.snapshot(); !slices.Equal(g.notifies, []notify{{1, 1, true}}) {
		t.Fatalf("notifies %v", g.notifies)
	}
}

func TestCoordinatorSealed(t *testing.T) {
	key := testKey(t, 7)
	store, err := OpenJobStorage(t.TempDir(), testJob, key)
	if err != nil {
		t.Fatal(err)
	}
	fg := &fakeGateway{}
	clock := newFakeClock()
	c, err := NewCoordinator(CoordinatorConfig{
		JobID: testJob, MaxParallelism: maxP, Operators: jobOperators, Interval: time.Second, Storage: store, Clock: clock,
		TolerableFailures: 5,
	}, fg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(JobFailed)
	clock.settle = func() { settle(c) }
	tasks, sources := tasksOf(1)
	c.AttemptRunning(1, tasks, sources)
	clock.Advance(time.Second)
	// A digest in a sealed checkpoint is refused: sealed files have none.
	if err := c.Acknowledge(ack(1, 0, 0, 1, false)); err == nil || !strings.Contains(err.Error(), "sha256 given for a sealed file") {
		t.Fatalf("hashed acknowledgement in a sealed checkpoint: %v", err)
	}
	clock.Advance(time.Second)
	for v := range 2 {
		for s := range 2 {
			a := ack(1, v, s, 2, false)
			for name, st := range a.Operators {
				if st.Operator != nil {
					l := *st.Operator
					l.File.SHA256 = ""
					st.Operator = &l
				}
				if st.Keyed != nil {
					k := *st.Keyed
					k.Files = []FileRef{{Path: k.Files[0].Path, Size: k.Files[0].Size}}
					st.Keyed = &k
				}
				a.Operators[name] = st
			}
			if err := c.Acknowledge(a); err != nil {
				t.Fatal(err)
			}
		}
	}
	cc, err := store.ReadMetadata(2)
	if err != nil || cc.Meta.Sealing != SealingAESGCM || cc.Meta.KeyID != key.ID() {
		t.Fatalf("sealed checkpoint %+v, %v", cc, err)
	}
}

// closingGateway ends the job from inside Finished, as the JobManager
// does when the final checkpoint completes.
type closingGateway struct {
	*fakeGateway
	c      **Coordinator
	closed chan struct{}
}

func (g closingGateway) Finished(attempt int) {
	g.fakeGateway.Finished(attempt)
	(*g.c).AttemptEnded(attempt)
	(*g.c).Close(JobFinished)
	close(g.closed)
}

func TestCoordinatorClosedFromItsGateway(t *testing.T) {
	store, err := OpenJobStorage(t.TempDir(), testJob, nil)
	if err != nil {
		t.Fatal(err)
	}
	var c *Coordinator
	g := closingGateway{&fakeGateway{}, &c, make(chan struct{})}
	c, err = NewCoordinator(CoordinatorConfig{
		JobID: testJob, MaxParallelism: maxP, Operators: jobOperators, Interval: time.Hour, Storage: store, Clock: newFakeClock(),
	}, g)
	if err != nil {
		t.Fatal(err)
	}
	tasks, sources := tasksOf(1)
	c.AttemptRunning(1, tasks, sources)
	for _, s := range sources {
		c.EndOfData(1, s)
	}
	settle(c)
	for v := range 2 {
		for s := range 2 {
			a := ack(1, v, s, 1, false)
			a.Finished = true
			if err := c.Acknowledge(a); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-g.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close from inside the Gateway did not return")
	}
	select {
	case <-c.out.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the Gateway goroutine did not end after Close")
	}
	if _, err := os.Lstat(store.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a finished job's checkpoints were kept: %v", err)
	}
}

// TestCoordinatorSavepointRequestsBounded: savepoint requests are a
// caller's input; a caller POSTing in a loop neither queues unbounded
// snapshots nor grows the operations the coordinator remembers.
func TestCoordinatorSavepointRequestsBounded(t *testing.T) {
	h := newHarness(t, nil)
	h.run(1)
	h.advance(time.Second) // checkpoint 1 pending: requests queue behind it
	target := filepath.Join(t.TempDir(), "sp")
	var queued []string
	for range MaxQueuedSavepoints {
		id, err := h.c.TriggerSavepoint(SavepointRequest{Target: target, Type: event.Savepoint})
		if err != nil {
			t.Fatalf("savepoint request %d: %v", len(queued)+1, err)
		}
		queued = append(queued, id)
	}
	if _, err := h.c.TriggerSavepoint(SavepointRequest{Target: target, Type: event.Savepoint}); !errors.Is(err, ErrTooManySavepoints) {
		t.Fatalf("request beyond %d queued: %v, want ErrTooManySavepoints", MaxQueuedSavepoints, err)
	}
	h.ackAll(1, 1, false, false)
	// The first queued savepoint is now in progress: still the bound.
	if _, err := h.c.TriggerSavepoint(SavepointRequest{Target: target, Type: event.Savepoint}); !errors.Is(err, ErrTooManySavepoints) {
		t.Fatalf("request with %d queued or in progress: %v", MaxQueuedSavepoints, err)
	}
	for id := int64(2); id < 2+MaxQueuedSavepoints; id++ {
		h.ackAll(1, id, true, false)
	}
	for _, id := range queued {
		if op, ok := h.c.Operation(id); !ok || !op.Done || op.Failure != "" {
			t.Fatalf("queued savepoint %s: %+v %v", id, op, ok)
		}
	}
	// Requests that fail at once (the target is a file) finish one by
	// one; the oldest finished operations are forgotten past the bound.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var last string
	for range 2 * MaxSavepointOperations {
		id, err := h.c.TriggerSavepoint(SavepointRequest{Target: file, Type: event.Savepoint})
		if err != nil {
			t.Fatal(err)
		}
		settle(h.c)
		last = id
	}
	if op, ok := h.c.Operation(last); !ok || !op.Done || op.Failure == "" {
		t.Fatalf("last request: %+v %v, want a failure naming the target", op, ok)
	}
	if _, ok := h.c.Operation(queued[0]); ok {
		t.Fatal("the oldest operation is still remembered")
	}
	h.c.opsMu.Lock()
	n, order := len(h.c.ops), len(h.c.opOrder)
	h.c.opsMu.Unlock()
	if n != MaxSavepointOperations || order != n {
		t.Fatalf("%d operations remembered (%d in order), want %d", n, order, MaxSavepointOperations)
	}
}
