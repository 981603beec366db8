package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
	"github.com/sluice-dev/sluice/internal/security/sealed"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// Gateway is the coordinator's view of the job, implemented by the
// JobManager. The coordinator calls it from one goroutine of its own, in
// order, never while holding a lock, so the JobManager may hold its own
// lock when it calls the coordinator and take it inside these methods.
type Gateway interface {
	// Trigger sends the barrier to the sources of the attempt (target: a
	// savepoint's directory, "" for a checkpoint). An error aborts the
	// snapshot.
	Trigger(ctx context.Context, attempt int, b event.Barrier, target string) error
	// Notify tells every task of the attempt that snapshot id completed
	// or was aborted.
	Notify(ctx context.Context, attempt int, id int64, completed bool)
	// FailOver fails the attempt: tolerable failed checkpoints exceeded.
	FailOver(attempt int, cause string)
	// Finished: the final checkpoint (every subtask finished) completed
	// and was notified; the job ends FINISHED.
	Finished(attempt int)
	// Stopped: a suspending or terminating savepoint completed and was
	// notified; the job ends FINISHED, or CANCELED with op.Request.Cancel.
	Stopped(attempt int, op *Operation)
}

// Clock is the coordinator's time: the system's, or a fake one in tests.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d; stop cancels it.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}

// CoordinatorConfig configures the coordinator of one job.
type CoordinatorConfig struct {
	JobID, JobName string
	// MaxParallelism is pipeline.max-parallelism, and Operators the
	// job's operators in spec order: _metadata records every one.
	MaxParallelism int
	Operators      []OperatorInfo
	// Interval is execution.checkpointing.interval; 0: savepoints only.
	Interval          time.Duration
	Timeout, MinPause time.Duration // Timeout 0: 10 min
	Mode              Mode
	TolerableFailures int
	NumRetained       int // < 1: 1
	Retention         Retention
	// Storage is <state.checkpoints.dir>/<job-id>; required with an
	// Interval. Without it the job takes savepoints only, sealed with Key.
	Storage *JobStorage
	Key     *sealed.Key
	// Restored is the snapshot the job started from, if any: ids continue
	// after it, and it is the restore point until a checkpoint completes.
	Restored *CompletedCheckpoint
	Logger   *slog.Logger
	// Record, when set, makes a completed checkpoint durable elsewhere
	// before it counts (the high-availability pointer store): it is called
	// after _metadata is written and before the tasks are told (sinks
	// commit) or older checkpoints are deleted. An error aborts the
	// checkpoint, so a checkpoint a successor JobManager cannot find is
	// never committed.
	Record      func(ctx context.Context, cp *CompletedCheckpoint) error
	Clock       Clock         // nil: SystemClock
	CallTimeout time.Duration // deadline of each Trigger/Notify call; 0: 10 s
}

// DefaultTimeout is execution.checkpointing.timeout's default.
const DefaultTimeout = 10 * time.Minute

// finalPause spaces the checkpoints taken after the end of input while the
// last tasks drain (the first is triggered at once).
const finalPause = 100 * time.Millisecond

// Coordinator runs the checkpoints and savepoints of one job. It is an
// actor: one goroutine owns every field below the line and handles each
// event in turn; Gateway calls go through a second goroutine, in order, so
// no method waits for the JobManager. Close stops both.
type Coordinator struct {
	cfg   CoordinatorConfig
	gw    Gateway
	clock Clock
	log   *slog.Logger
	key   *sealed.Key

	inbox   chan func()
	stopped chan struct{} // closed when the actor has returned
	out     *outbox

	// Savepoint operations outlive the actor (REST reports them after the
	// job ended), so they have their own lock.
	opsMu sync.Mutex
	// closedStats are the statistics when the coordinator closed (guarded by opsMu).
	closedStats *Stats
	ops         map[string]*savepointOp
	opOrder     []string // ids of ops, oldest first (guarded by opsMu)

	// Owned by the actor goroutine.
	closed      bool
	attempt     int
	running     bool
	tasks       map[subtaskKey]TaskRef
	sources     map[subtaskKey]bool
	ended       map[subtaskKey]bool // sources that reported end of data
	finalDone   bool                // a finished checkpoint completed
	lastFinal   time.Time           // trigger of the last end-of-input checkpoint
	nextID      int64
	pending     *pending
	lastTrigger time.Time
	lastEnd     time.Time
	timerGen    int
	timerStop   func() bool
	retained    []*CompletedCheckpoint
	restored    *CompletedCheckpoint
	failures    int
	queue       []*savepointOp
	warned      bool
	stats       statsTracker
}

type pending struct {
	id          int64
	typ         event.SnapshotType
	attempt     int
	triggered   time.Time
	expected    map[subtaskKey]TaskRef
	acks        map[subtaskKey]*Ack
	savepoint   *savepointOp
	stopTimeout func() bool
	stats       *CheckpointStats
}

type savepointOp struct {
	id      string
	op      Operation
	storage *SavepointStorage
}

// NewCoordinator validates cfg and starts the coordinator's goroutines.
// The job's first attempt is announced with AttemptRunning.
func NewCoordinator(cfg CoordinatorConfig, gw Gateway) (*Coordinator, error) {
	if err := CheckJobID(cfg.JobID); err != nil {
		return nil, err
	}
	if cfg.Interval > 0 && cfg.Storage == nil {
		return nil, fmt.Errorf("execution.checkpointing.interval is set but state.checkpoints.dir is not: set state.checkpoints.dir to a directory every process can write")
	}
	if cfg.Storage != nil && cfg.Storage.JobID() != cfg.JobID {
		return nil, fmt.Errorf("checkpoint storage of job %s given to job %s", cfg.Storage.JobID(), cfg.JobID)
	}
	if cfg.TolerableFailures < 0 {
		return nil, fmt.Errorf("execution.checkpointing.tolerable-failed-checkpoints: %d: want >= 0", cfg.TolerableFailures)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.NumRetained < 1 {
		cfg.NumRetained = 1
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	if len(cfg.Operators) > 0 {
		if err := keygroup.CheckMaxParallelism(cfg.MaxParallelism); err != nil {
			return nil, fmt.Errorf("pipeline.max-parallelism: %w", err)
		}
	}
	names := map[string]bool{}
	for _, o := range cfg.Operators {
		if names[o.Name] || o.Parallelism < 1 || o.Parallelism > cfg.MaxParallelism {
			return nil, fmt.Errorf("operator %q: repeated, or parallelism %d outside 1..%d (pipeline.max-parallelism)", o.Name, o.Parallelism, cfg.MaxParallelism)
		}
		names[o.Name] = true
	}
	c := &Coordinator{
		cfg: cfg, gw: gw, clock: cfg.Clock, log: cfg.Logger, key: cfg.Key,
		inbox: make(chan func()), stopped: make(chan struct{}),
		nextID: 1, restored: cfg.Restored, ops: map[string]*savepointOp{},
	}
	if c.clock == nil {
		c.clock = SystemClock
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Storage != nil {
		c.key = cfg.Storage.Key()
		// Ids never repeat: continue after anything already there.
		ids, err := cfg.Storage.Checkpoints()
		if err != nil {
			return nil, err
		}
		if len(ids) > 0 {
			c.nextID = ids[len(ids)-1] + 1
		}
	}
	if cfg.Restored != nil {
		c.nextID = max(c.nextID, cfg.Restored.ID+1)
	}
	c.out = newOutbox(cfg.CallTimeout)
	go c.run()
	go c.out.run()
	return c, nil
}

func (c *Coordinator) run() {
	defer close(c.stopped)
	for f := range c.inbox {
		f()
		if c.closed {
			return
		}
	}
}

// call runs f on the actor and waits for it; false once closed.
func (c *Coordinator) call(f func()) bool {
	done := make(chan struct{})
	select {
	case c.inbox <- func() { f(); close(done) }:
	case <-c.stopped:
		return false
	}
	<-done
	return true
}

// post runs f on the actor without waiting (timers, Gateway results).
func (c *Coordinator) post(f func()) {
	select {
	case c.inbox <- f:
	case <-c.stopped:
	}
}

var errClosed = errors.New("the job's checkpoint coordinator is closed: the job has ended")

// Bounds on what savepoint requests keep, so that a caller cannot grow the
// JobManager's memory (or queue snapshots that fill the disk) by POSTing.
const (
	// MaxQueuedSavepoints bounds the savepoint requests of a job that are
	// queued or in progress; one more is refused (ErrTooManySavepoints).
	MaxQueuedSavepoints = 4
	// MaxSavepointOperations bounds the operations a job remembers for
	// GET /jobs/{id}/savepoints/{triggerid}: beyond it the oldest finished
	// ones are forgotten (their id then answers 404, as an unknown one).
	MaxSavepointOperations = 64
)

// ErrTooManySavepoints refuses a savepoint request while
// MaxQueuedSavepoints of the job's are queued or in progress.
var ErrTooManySavepoints = fmt.Errorf("%d savepoints of the job are already queued or in progress: wait for one to complete (GET /jobs/{id}/savepoints/{triggerid}) and try again", MaxQueuedSavepoints)

// AttemptRunning says attempt runs with every task RUNNING: tasks are all
// its subtasks (with the TaskManager each was deployed to), sources those
// that head a source chain. Periodic checkpoints start an interval later.
func (c *Coordinator) AttemptRunning(attempt int, tasks []TaskRef, sources []TaskRef) {
	c.call(func() {
		if attempt < c.attempt {
			return
		}
		if c.pending != nil {
			c.abort(c.pending, fmt.Sprintf("attempt %d started", attempt), false, false)
		}
		c.attempt, c.running = attempt, true
		c.tasks = map[subtaskKey]TaskRef{}
		for _, t := range tasks {
			c.tasks[t.key()] = t
		}
		c.sources, c.ended = map[subtaskKey]bool{}, map[subtaskKey]bool{}
		for _, t := range sources {
			c.sources[t.key()] = true
		}
		c.finalDone, c.lastFinal = false, time.Time{}
		c.lastTrigger = c.clock.Now()
		c.schedule()
	})
}

// AttemptEnded says attempt ended (failed, canceled or finished): what was
// pending is aborted without counting as a failed checkpoint, and nothing
// is triggered until the next AttemptRunning.
func (c *Coordinator) AttemptEnded(attempt int) {
	c.call(func() {
		if attempt != c.attempt {
			return
		}
		c.running = false
		c.stopTimer()
		if c.pending != nil {
			c.abort(c.pending, fmt.Sprintf("attempt %d of the job ended", attempt), false, false)
		}
	})
}

// Acknowledge records a subtask's acknowledgement. The JobManager has
// checked that the caller is the TaskManager running the subtask; the
// coordinator checks that it acknowledges the pending snapshot of the
// current attempt, for a subtask expected and not yet acknowledged, and
// that every file is where the snapshot's files go (under chk-<id>/ or
// shared/, plain names for a savepoint). A stale or misrouted
// acknowledgement is refused; a well-routed one with bad content is
// refused and aborts the snapshot. The last one completes it.
func (c *Coordinator) Acknowledge(a Ack) error {
	var err error
	if !c.call(func() { err = c.acknowledge(a) }) {
		return errClosed
	}
	return err
}

func (c *Coordinator) acknowledge(a Ack) error {
	p := c.pending
	what := fmt.Sprintf("acknowledgement of checkpoint %d by %v", a.CheckpointID, a.Task)
	switch {
	case a.Task.Attempt != c.attempt:
		return fmt.Errorf("%s: the job runs attempt %d", what, c.attempt)
	case p == nil:
		return fmt.Errorf("%s: no checkpoint is pending", what)
	case a.CheckpointID != p.id:
		return fmt.Errorf("%s: checkpoint %d is pending", what, p.id)
	}
	exp, ok := p.expected[a.Task.key()]
	switch {
	case !ok:
		return fmt.Errorf("%s: not a subtask of the job", what)
	case exp.TaskManagerID != a.Task.TaskManagerID:
		return fmt.Errorf("%s: the subtask runs on taskmanager %s", what, exp.TaskManagerID)
	case p.acks[a.Task.key()] != nil:
		return fmt.Errorf("%s: already acknowledged", what)
	}
	if err := c.checkAck(p, &a); err != nil {
		err = fmt.Errorf("%s: %w", what, err)
		c.abort(p, err.Error(), true, true)
		return err
	}
	p.acks[a.Task.key()] = &a
	now := c.clock.Now()
	s := p.stats
	s.NumAcknowledgedSubtasks = len(p.acks)
	s.LatestAckTimestamp = now.UnixMilli()
	s.StateSize += a.Metrics.StateSize
	s.CheckpointedSize += a.Metrics.CheckpointedSize
	s.AlignmentDuration = max(s.AlignmentDuration, a.Metrics.AlignmentDuration.Nanoseconds())
	s.EndToEndDuration = now.Sub(p.triggered).Milliseconds()
	if len(p.acks) == len(p.expected) {
		c.complete(p)
	}
	return nil
}

// checkAck checks an acknowledgement's content as it will enter
// _metadata: its operators are those of its vertex, and a document with
// only its states passes Validate (paths, ranges, formats, sealing).
func (c *Coordinator) checkAck(p *pending, a *Ack) error {
	for name := range a.Operators {
		i := slices.IndexFunc(c.cfg.Operators, func(o OperatorInfo) bool { return o.Name == name })
		if i < 0 || c.cfg.Operators[i].Vertex != a.Task.Vertex {
			return fmt.Errorf("operator %q is not an operator of vertex %d", name, a.Task.Vertex)
		}
	}
	m := c.metadata(p, []*Ack{a}, p.triggered)
	return m.Validate()
}

// metadata builds the _metadata of p from acks.
func (c *Coordinator) metadata(p *pending, acks []*Ack, completed time.Time) *Metadata {
	m := &Metadata{
		Format: Format, JobID: c.cfg.JobID, JobName: c.cfg.JobName, CheckpointID: p.id, Type: TypeName(p.typ),
		Triggered: p.triggered.UnixMilli(), Completed: max(completed.UnixMilli(), p.triggered.UnixMilli()),
		MaxParallelism: c.cfg.MaxParallelism, Sealing: sealingOf(c.key), KeyID: keyIDOf(c.key),
	}
	byVertex := map[int][]*Ack{}
	for _, a := range acks {
		byVertex[a.Task.Vertex] = append(byVertex[a.Task.Vertex], a)
	}
	finished := len(acks) > 0
	for _, a := range acks {
		finished = finished && a.Finished
	}
	m.Finished = finished && len(acks) == len(p.expected)
	for _, o := range c.cfg.Operators {
		ost := OperatorState{Name: o.Name, Type: o.Type, Parallelism: o.Parallelism, Subtasks: make([]SubtaskState, o.Parallelism)}
		for _, a := range byVertex[o.Vertex] {
			if a.Task.Subtask < 0 || a.Task.Subtask >= o.Parallelism {
				continue
			}
			st := a.Operators[o.Name]
			st.Finished = st.Finished || a.Finished
			ost.Subtasks[a.Task.Subtask] = st
		}
		m.Operators = append(m.Operators, ost)
	}
	return m
}

// complete writes p's _metadata and makes p a completed checkpoint or
// savepoint.
func (c *Coordinator) complete(p *pending) {
	now := c.clock.Now()
	acks := make([]*Ack, 0, len(p.acks))
	for _, a := range p.acks {
		acks = append(acks, a)
	}
	m := c.metadata(p, acks, now)
	var cc *CompletedCheckpoint
	var err error
	if sp := p.savepoint; sp != nil {
		cc, err = sp.storage.WriteMetadata(m)
	} else {
		cc, err = c.cfg.Storage.WriteMetadata(m)
	}
	if err != nil {
		c.abort(p, fmt.Sprintf("cannot write %s: %v", MetadataName, err), true, true)
		return
	}
	if rec := c.cfg.Record; rec != nil && p.savepoint == nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
		err := rec(ctx, cc)
		cancel()
		if err != nil {
			c.abort(p, fmt.Sprintf("cannot record the completed checkpoint for recovery: %v", err), true, true)
			return
		}
	}
	c.endPending(p, now)
	p.stats.ExternalPath = cc.ExternalPath()
	p.stats.LatestAckTimestamp = now.UnixMilli()
	p.stats.EndToEndDuration = now.Sub(p.triggered).Milliseconds()
	c.stats.completed(p.stats)
	attempt := p.attempt
	if sp := p.savepoint; sp != nil {
		sp.storage.Close()
		c.setOp(sp, func(o *Operation) { o.Done, o.Location = true, "file:"+sp.storage.Dir() })
		c.log.Info("savepoint completed", "job", c.cfg.JobID, "checkpoint", p.id, "location", sp.op.Location)
		// A plain savepoint is not a recovery point: its completion is not
		// notified, so sinks do not commit what a failover would replay.
		if p.typ != event.Savepoint {
			// The job ends on it: nothing more is triggered in this attempt.
			c.running = false
			op := c.getOp(sp)
			c.out.push(func(ctx context.Context) {
				c.gw.Notify(ctx, attempt, p.id, true)
				c.gw.Stopped(attempt, &op)
			})
		}
		c.schedule()
		return
	}
	c.failures = 0
	c.retained = append(c.retained, cc)
	c.log.Info("checkpoint completed", "job", c.cfg.JobID, "checkpoint", p.id, "duration", now.Sub(p.triggered), "finished", m.Finished)
	for len(c.retained) > c.cfg.NumRetained {
		old := c.retained[0]
		c.retained = c.retained[1:]
		if err := c.cfg.Storage.DeleteCheckpoint(old.ID); err != nil {
			c.log.Warn("cannot delete a checkpoint beyond state.checkpoints.num-retained", "job", c.cfg.JobID, "checkpoint", old.ID, "err", err)
		}
		for _, h := range c.stats.history {
			if h.ID == old.ID {
				h.Discarded = true
			}
		}
	}
	metas := make([]*Metadata, len(c.retained))
	for i, r := range c.retained {
		metas[i] = r.Meta
	}
	if _, err := c.cfg.Storage.DeleteUnreferenced(metas); err != nil {
		c.log.Warn("cannot delete unreferenced shared checkpoint files", "job", c.cfg.JobID, "err", err)
	}
	final := m.Finished
	if final {
		c.finalDone = true
	}
	c.out.push(func(ctx context.Context) {
		c.gw.Notify(ctx, attempt, p.id, true)
		if final {
			c.gw.Finished(attempt)
		}
	})
	c.schedule()
}

// endPending clears p as the pending snapshot.
func (c *Coordinator) endPending(p *pending, now time.Time) {
	if p.stopTimeout != nil {
		p.stopTimeout()
	}
	c.pending = nil
	c.lastEnd = now
}

// abort ends p unsuccessfully: its directory is deleted (best effort),
// the tasks are notified (unless the attempt is gone), and, if counted, a
// checkpoint failure beyond tolerable-failed-checkpoints fails the
// attempt over.
func (c *Coordinator) abort(p *pending, cause string, count, notify bool) {
	now := c.clock.Now()
	c.endPending(p, now)
	c.stats.failed(p.stats, now.UnixMilli(), cause)
	attempt := p.attempt
	if sp := p.savepoint; sp != nil {
		if err := sp.storage.Remove(); err != nil {
			c.log.Warn("cannot delete a failed savepoint's directory", "job", c.cfg.JobID, "checkpoint", p.id, "err", err)
		}
		c.setOp(sp, func(o *Operation) { o.Done, o.Failure = true, fmt.Sprintf("savepoint %d failed: %s", p.id, cause) })
		c.log.Warn("savepoint failed", "job", c.cfg.JobID, "checkpoint", p.id, "err", cause)
		count = false // savepoints are the user's: they never fail the job over
	} else {
		if err := c.cfg.Storage.DeleteCheckpoint(p.id); err != nil {
			c.log.Warn("cannot delete an aborted checkpoint", "job", c.cfg.JobID, "checkpoint", p.id, "err", err)
		}
		c.log.Warn("checkpoint failed", "job", c.cfg.JobID, "checkpoint", p.id, "err", cause)
	}
	if notify {
		c.out.push(func(ctx context.Context) { c.gw.Notify(ctx, attempt, p.id, false) })
	}
	if count {
		c.failures++
		if c.failures > c.cfg.TolerableFailures {
			cause := fmt.Sprintf("checkpoint %d failed (%s); exceeded execution.checkpointing.tolerable-failed-checkpoints (%d)", p.id, cause, c.cfg.TolerableFailures)
			// The attempt is going down: trigger nothing more in it, and
			// give the next attempt a fresh count.
			c.running, c.failures = false, 0
			c.stopTimer()
			c.out.push(func(context.Context) { c.gw.FailOver(attempt, cause) })
			return
		}
	}
	c.schedule()
}

// Decline aborts the pending snapshot a subtask of the current attempt
// could not take; anything else (stale, misrouted) is ignored.
func (c *Coordinator) Decline(d Decline) {
	c.call(func() {
		p := c.pending
		if p == nil || d.Task.Attempt != c.attempt || d.CheckpointID != p.id {
			return
		}
		if exp, ok := p.expected[d.Task.key()]; !ok || exp.TaskManagerID != d.Task.TaskManagerID {
			return
		}
		c.abort(p, fmt.Sprintf("declined by vertex %d subtask %d: %s", d.Task.Vertex, d.Task.Subtask, d.Reason), true, true)
	})
}

// EndOfData records that a source subtask reached the end of its input.
// When every source subtask of the attempt has, and checkpointing is on,
// a checkpoint is triggered at once (after the pending one), and again
// until one completes with every subtask finished: that one ends the job
// (Gateway.Finished). Without an interval the tasks end on their own.
func (c *Coordinator) EndOfData(attempt int, t TaskRef) {
	c.call(func() {
		if attempt != c.attempt || !c.sources[t.key()] || c.tasks[t.key()].TaskManagerID != t.TaskManagerID {
			return
		}
		c.ended[t.key()] = true
		if c.pending == nil {
			c.schedule()
		}
	})
}

func (c *Coordinator) allEnded() bool {
	return len(c.sources) > 0 && len(c.ended) == len(c.sources)
}

// TriggerSavepoint queues a savepoint: it waits for the pending
// checkpoint and goes before the next periodic one. The returned id names
// the request for Operation.
func (c *Coordinator) TriggerSavepoint(r SavepointRequest) (string, error) {
	target, err := LocalPath(r.Target)
	if err != nil {
		return "", fmt.Errorf("savepoint target directory: %w: give target-directory as /path or file:///path, or set state.savepoints.dir", err)
	}
	r.Target = target
	if r.Type == event.Checkpoint || r.Type > event.SavepointTerminate {
		return "", fmt.Errorf("savepoint request: type %v is not a savepoint", r.Type)
	}
	if r.Cancel && r.Type != event.SavepointSuspend {
		return "", fmt.Errorf("savepoint request: cancel-job takes a suspending savepoint, not %v", r.Type)
	}
	id, err := randomHex(16)
	if err != nil {
		return "", err
	}
	var cerr error
	if !c.call(func() {
		if !c.running {
			cerr = fmt.Errorf("job %s is not running: a savepoint needs every task running", c.cfg.JobID)
			return
		}
		inProgress := len(c.queue)
		if c.pending != nil && c.pending.savepoint != nil {
			inProgress++
		}
		if inProgress >= MaxQueuedSavepoints {
			cerr = ErrTooManySavepoints
			return
		}
		sp := &savepointOp{id: id, op: Operation{Request: r}}
		c.addOp(sp)
		c.queue = append(c.queue, sp)
		if c.pending == nil {
			c.schedule()
		}
	}) {
		return "", errClosed
	}
	return id, cerr
}

// Operation returns the state of savepoint request id, also after Close.
func (c *Coordinator) Operation(id string) (*Operation, bool) {
	c.opsMu.Lock()
	defer c.opsMu.Unlock()
	sp, ok := c.ops[id]
	if !ok {
		return nil, false
	}
	o := sp.op
	return &o, true
}

// addOp remembers sp, forgetting the oldest finished operations beyond
// MaxSavepointOperations (unfinished ones are at most MaxQueuedSavepoints).
func (c *Coordinator) addOp(sp *savepointOp) {
	c.opsMu.Lock()
	defer c.opsMu.Unlock()
	c.ops[sp.id] = sp
	c.opOrder = append(c.opOrder, sp.id)
	for i := 0; len(c.ops) > MaxSavepointOperations && i < len(c.opOrder); {
		if id := c.opOrder[i]; c.ops[id].op.Done {
			delete(c.ops, id)
			c.opOrder = slices.Delete(c.opOrder, i, i+1)
			continue
		}
		i++
	}
}

func (c *Coordinator) setOp(sp *savepointOp, f func(*Operation)) {
	c.opsMu.Lock()
	defer c.opsMu.Unlock()
	f(&sp.op)
}

func (c *Coordinator) getOp(sp *savepointOp) Operation {
	c.opsMu.Lock()
	defer c.opsMu.Unlock()
	return sp.op
}

// RestorePoint is what a new attempt restores: the latest retained
// checkpoint, else the snapshot the job started from; nil for none.
func (c *Coordinator) RestorePoint() *CompletedCheckpoint {
	var cp *CompletedCheckpoint
	c.call(func() {
		if n := len(c.retained); n > 0 {
			cp = c.retained[n-1]
		} else {
			cp = c.restored
		}
	})
	return cp
}

// Refuse drops checkpoint id from the restore points: a restore found it
// damaged (cause says how). Its directory is kept for inspection.
func (c *Coordinator) Refuse(id int64, cause string) {
	c.call(func() {
		c.retained = slices.DeleteFunc(c.retained, func(r *CompletedCheckpoint) bool { return r.ID == id })
		if c.restored != nil && c.restored.ID == id {
			c.restored = nil
		}
		c.log.Warn("checkpoint refused for restore", "job", c.cfg.JobID, "checkpoint", id, "err", cause)
	})
}

// Restored records, for the statistics, that an attempt is being deployed
// to restore cp; ids continue after it.
func (c *Coordinator) Restored(cp *CompletedCheckpoint) {
	c.call(func() {
		c.nextID = max(c.nextID, cp.ID+1)
		c.stats.restored(&RestoredStats{ID: cp.ID, RestoreTimestamp: c.clock.Now().UnixMilli(), IsSavepoint: cp.Savepoint, ExternalPath: cp.ExternalPath()})
	})
}

// Stats returns the checkpoint statistics.
func (c *Coordinator) Stats() Stats {
	var s Stats
	if !c.call(func() { s = c.stats.snapshot() }) {
		// Closed: the statistics as they were when the job ended.
		c.opsMu.Lock()
		defer c.opsMu.Unlock()
		if c.closedStats != nil {
			return *c.closedStats
		}
		return Stats{History: []*CheckpointStats{}}
	}
	return s
}

// Close ends the coordinator when the job has ended: the pending snapshot
// and queued savepoints fail, and the job's directory is deleted (a
// FINISHED job; a CANCELED one with DELETE_ON_CANCELLATION) or kept. It
// does not wait for a Gateway call in progress (whose context it cancels),
// so the JobManager may call it with its lock held; nothing is called
// after it returns.
func (c *Coordinator) Close(final JobState) {
	c.call(func() {
		c.running = false
		c.stopTimer()
		cause := fmt.Sprintf("the job ended (%s)", final)
		if p := c.pending; p != nil {
			c.abort(p, cause, false, false)
		}
		for _, sp := range c.queue {
			c.setOp(sp, func(o *Operation) { o.Done, o.Failure = true, "savepoint not taken: "+cause })
		}
		c.queue = nil
		if s := c.cfg.Storage; s != nil {
			if final == JobFinished || (final == JobCanceled && c.cfg.Retention == DeleteOnCancellation) {
				if err := s.RemoveAll(); err != nil {
					c.log.Warn("cannot delete the job's checkpoints", "job", c.cfg.JobID, "err", err)
				}
			} else {
				s.Close()
				c.log.Info("checkpoints kept", "job", c.cfg.JobID, "dir", s.Dir(), "state", string(final))
			}
		}
		c.closed = true
		final := c.stats.snapshot()
		c.opsMu.Lock()
		c.closedStats = &final
		c.opsMu.Unlock()
	})
	<-c.stopped
	c.out.stop()
}

func (c *Coordinator) stopTimer() {
	c.timerGen++
	if c.timerStop != nil {
		c.timerStop()
		c.timerStop = nil
	}
}

// schedule decides what comes next when nothing is pending: a queued
// savepoint at once, the end-of-input checkpoint, or the next periodic
// checkpoint at max(last trigger + interval, last end + min-pause).
func (c *Coordinator) schedule() {
	c.stopTimer()
	if c.closed || !c.running || c.pending != nil {
		return
	}
	if len(c.queue) > 0 {
		sp := c.queue[0]
		c.queue = c.queue[1:]
		c.triggerSavepoint(sp)
		return
	}
	if c.cfg.Interval <= 0 || c.finalDone {
		return
	}
	now := c.clock.Now()
	var at time.Time
	if c.allEnded() {
		at = now
		if !c.lastFinal.IsZero() {
			at = c.lastFinal.Add(min(finalPause, c.cfg.Interval))
		}
	} else {
		at = c.lastTrigger.Add(c.cfg.Interval)
		if e := c.lastEnd.Add(c.cfg.MinPause); e.After(at) {
			at = e
		}
	}
	d := at.Sub(now)
	if d <= 0 {
		c.triggerCheckpoint()
		return
	}
	gen := c.timerGen
	c.timerStop = c.clock.AfterFunc(d, func() {
		c.post(func() {
			if gen == c.timerGen {
				c.timerStop = nil
				c.schedule()
			}
		})
	})
}

func (c *Coordinator) start(typ event.SnapshotType, sp *savepointOp) *pending {
	now := c.clock.Now()
	p := &pending{
		id: c.nextID, typ: typ, attempt: c.attempt, triggered: now, savepoint: sp,
		expected: c.tasks, acks: map[subtaskKey]*Ack{},
	}
	c.nextID++
	c.lastTrigger = now
	p.stats = &CheckpointStats{
		ID: p.id, Status: StatusInProgress, IsSavepoint: sp != nil, TriggerTimestamp: now.UnixMilli(),
		NumSubtasks: len(p.expected), CheckpointType: TypeName(typ),
	}
	c.stats.started(p.stats)
	c.pending = p
	return p
}

func (c *Coordinator) triggerCheckpoint() {
	if !c.warned {
		// Said once, at the job's first checkpoint: which protection its files have.
		c.warned = true
		if c.key == nil {
			c.log.Warn("checkpoints are integrity-checked (SHA-256), not encrypted: set "+sealed.KeyFileKey+" to seal them", "job", c.cfg.JobID)
		} else {
			c.log.Info("checkpoints are encrypted (AES-256-GCM) and authenticated, each file bound to its job, checkpoint and name", "job", c.cfg.JobID, "key-id", c.key.ID())
		}
	}
	if c.allEnded() {
		c.lastFinal = c.clock.Now()
	}
	p := c.start(event.Checkpoint, nil)
	if err := c.cfg.Storage.CreateCheckpoint(p.id); err != nil {
		c.abort(p, fmt.Sprintf("cannot create its directory: %v", err), true, false)
		return
	}
	c.send(p, "")
}

func (c *Coordinator) triggerSavepoint(sp *savepointOp) {
	req := c.getOp(sp).Request
	st, err := CreateSavepoint(req.Target, c.cfg.JobID, c.key)
	if err != nil {
		c.setOp(sp, func(o *Operation) { o.Done, o.Failure = true, err.Error() })
		c.log.Warn("savepoint failed", "job", c.cfg.JobID, "err", err)
		c.schedule()
		return
	}
	sp.storage = st
	p := c.start(req.Type, sp)
	c.send(p, st.Dir())
}

// send starts p's timeout and has the Gateway trigger it.
func (c *Coordinator) send(p *pending, target string) {
	p.stopTimeout = c.clock.AfterFunc(c.cfg.Timeout, func() {
		c.post(func() {
			if c.pending == p {
				c.abort(p, fmt.Sprintf("timeout after %v", c.cfg.Timeout), true, true)
			}
		})
	})
	b := event.Barrier{ID: p.id, Timestamp: p.triggered.UnixMilli(), Type: p.typ}
	attempt := p.attempt
	c.out.push(func(ctx context.Context) {
		if err := c.gw.Trigger(ctx, attempt, b, target); err != nil {
			c.post(func() {
				if c.pending == p {
					c.abort(p, fmt.Sprintf("trigger failed: %v", err), true, true)
				}
			})
		}
	})
}

// outbox runs Gateway calls in order on one goroutine, so the actor never
// waits for the JobManager. Its queue is unbounded: the actor must never
// block on it. Each call gets its own deadline (CallTimeout).
type outbox struct {
	mu      sync.Mutex
	q       []func(context.Context)
	wake    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	timeout time.Duration
}

func newOutbox(timeout time.Duration) *outbox {
	ctx, cancel := context.WithCancel(context.Background())
	return &outbox{wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}), timeout: timeout}
}

func (o *outbox) push(f func(context.Context)) {
	o.mu.Lock()
	o.q = append(o.q, f)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) run() {
	defer close(o.done)
	for {
		o.mu.Lock()
		if len(o.q) == 0 {
			o.mu.Unlock()
			select {
			case <-o.wake:
				continue
			case <-o.ctx.Done():
				return
			}
		}
		f := o.q[0]
		o.q = o.q[1:]
		o.mu.Unlock()
		if o.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(o.ctx, o.timeout)
		f(ctx)
		cancel()
	}
}

// stop cancels the call in progress and ends the goroutine after it.
func (o *outbox) stop() { o.cancel() }
