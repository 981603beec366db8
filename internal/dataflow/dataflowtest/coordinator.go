package dataflowtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/checkpoint"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/dataflow/event"
)

// Coordinator is a checkpoint coordinator for tests, in one process: it triggers the source
// subtasks through their mailboxes, collects acknowledgements into checkpoint.Metadata,
// notifies every subtask of completions and aborts, triggers the final checkpoint once every
// source reported its end, and builds each subtask's TaskRestore with checkpoint.Assign.
//
// A subtask that finished keeps answering triggers until a checkpoint in which every subtask
// was finished completes; it ends on that checkpoint's final notification (Mail.Final), as
// with the JobManager's coordinator.
type Coordinator struct {
	plan     *dataflow.Plan
	vertices []int // the vertices taking part
	Store    *Store
	Mode     dataflow.CheckpointMode
	Periodic bool
	// Manual holds a checkpoint whose acknowledgements are all in until CompleteNow: a
	// test looks at the state of things between the acknowledgements and the completion.
	Manual bool
	// Job is what every subtask is told of its job (its id names a file sink's files).
	Job     dataflow.JobInfo
	restore *checkpoint.Metadata
	// finalDone: the final checkpoint (every subtask finished) completed; nothing more is
	// triggered.
	finalDone bool

	mu        sync.Mutex
	mail      map[[2]int]*dataflow.Mailbox
	next      int64
	pending   *pendingCheckpoint
	completed []*checkpoint.Metadata
	declined  map[int64]string
	finished  map[[2]int]map[string]checkpoint.SubtaskState // subtasks gone: their last state
	ended     map[[2]int]bool                               // sources that reported end of data
	changed   chan struct{}                                 // closed and replaced on every change
	Metrics   []dataflow.CheckpointMetrics
}

type pendingCheckpoint struct {
	info   checkpoint.Info
	acks   map[[2]int]map[string]checkpoint.SubtaskState
	expect int
	ready  bool // every acknowledgement is in (Manual)
}

// NewCoordinator coordinates the given vertices of p (all when none is given), restoring
// from restore when it is not nil.
func NewCoordinator(p *dataflow.Plan, restore *checkpoint.Metadata, vertices ...int) *Coordinator {
	if len(vertices) == 0 {
		for _, v := range p.Vertices {
			vertices = append(vertices, v.ID)
		}
	}
	c := &Coordinator{plan: p, vertices: vertices, Store: NewStore(), Periodic: true, restore: restore,
		mail: map[[2]int]*dataflow.Mailbox{}, declined: map[int64]string{},
		finished: map[[2]int]map[string]checkpoint.SubtaskState{}, ended: map[[2]int]bool{}, changed: make(chan struct{})}
	if restore != nil {
		c.next = restore.CheckpointID
	}
	return c
}

// WithStore makes c write to and restore from s (to restore from another run's store).
func (c *Coordinator) WithStore(s *Store) *Coordinator {
	c.Store = s
	return c
}

// Wire gives subtask (vertex, subtask) a mailbox and its checkpointing; use it as
// dataflow.LocalOptions.Task.
func (c *Coordinator) Wire(vertex, subtask int, tio *dataflow.TaskIO) {
	key := [2]int{vertex, subtask}
	mb := dataflow.NewMailbox()
	c.mu.Lock()
	c.mail[key] = mb
	c.mu.Unlock()
	tio.Mailbox = mb
	if c.Job != (dataflow.JobInfo{}) {
		tio.Job = c.Job
	}
	tc := &dataflow.TaskCheckpointing{
		Mode:     c.Mode,
		Periodic: c.Periodic,
		Files:    c.Store.Files,
		Ack: func(cp checkpoint.Info, ops map[string]checkpoint.SubtaskState, m dataflow.CheckpointMetrics) {
			c.ack(key, cp, ops, m)
		},
		Decline:   func(id int64, reason string) { c.decline(id, reason) },
		EndOfData: func() { c.endOfData(key) },
	}
	if c.restore != nil {
		tr, err := c.TaskRestore(vertex, subtask)
		if err != nil {
			panic(err) // a test's restore that cannot be assigned is a broken test
		}
		tc.Restore, tc.RestoreFiles = tr, c.Store.RestoreFiles(c.restore.CheckpointID)
	}
	tio.Checkpoints = tc
}

// TaskRestore is what subtask (vertex, subtask) restores from c's restore metadata.
func (c *Coordinator) TaskRestore(vertex, subtask int) (*checkpoint.TaskRestore, error) {
	v := c.plan.Vertices[vertex]
	tr := &checkpoint.TaskRestore{CheckpointID: c.restore.CheckpointID, Operators: map[string]*checkpoint.OperatorRestore{}}
	for _, name := range v.Operators {
		o, err := checkpoint.Assign(c.restore, name, subtask, v.Parallelism)
		if err != nil {
			return nil, err
		}
		if o != nil {
			tr.Operators[name] = o
		}
	}
	return tr, nil
}

// Trigger starts a snapshot of type typ by posting the trigger to every source subtask
// still running; it returns the checkpoint id, or 0 while another is pending.
func (c *Coordinator) Trigger(typ event.SnapshotType) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.triggerLocked(typ)
}

func (c *Coordinator) triggerLocked(typ event.SnapshotType) int64 {
	if c.pending != nil || c.finalDone {
		// After the final checkpoint nothing is triggered: its notification ends the tasks,
		// and a later checkpoint would leave their sinks a transaction nobody commits.
		return 0
	}
	c.next++
	id := c.next
	now := time.Now()
	p := &pendingCheckpoint{info: checkpoint.Info{ID: id, Timestamp: time.UnixMilli(now.UnixMilli()), Type: typ},
		acks: map[[2]int]map[string]checkpoint.SubtaskState{}}
	for _, vid := range c.vertices {
		// Finished tasks answer too, until the final checkpoint's notification ends them.
		p.expect += c.plan.Vertices[vid].Parallelism
	}
	c.pending = p
	b := event.Barrier{ID: id, Timestamp: now.UnixMilli(), Type: typ}
	for _, vid := range c.vertices {
		v := c.plan.Vertices[vid]
		if !v.Source {
			continue
		}
		for s := range v.Parallelism {
			key := [2]int{vid, s}
			if mb := c.mail[key]; mb != nil {
				mb.Post(dataflow.Mail{Kind: dataflow.MailTrigger, Barrier: b})
			}
		}
	}
	return id
}

// Run triggers a checkpoint every interval until ctx ends; run it in a goroutine the test
// owns.
func (c *Coordinator) Run(ctx context.Context, interval time.Duration) {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			c.Trigger(event.Checkpoint)
		}
	}
}

func (c *Coordinator) ack(key [2]int, cp checkpoint.Info, ops map[string]checkpoint.SubtaskState, m dataflow.CheckpointMetrics) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending
	if p == nil || p.info.ID != cp.ID {
		return // late: aborted already
	}
	if _, dup := p.acks[key]; dup {
		panic(fmt.Sprintf("subtask %v acknowledged checkpoint %d twice", key, cp.ID))
	}
	p.acks[key] = ops
	c.Metrics = append(c.Metrics, m)
	if len(p.acks) < p.expect {
		return
	}
	if c.Manual {
		p.ready = true
		c.signal()
		return
	}
	c.complete(p)
}

// Acknowledged reports whether every subtask acknowledged the pending checkpoint id.
func (c *Coordinator) Acknowledged(id int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending != nil && c.pending.info.ID == id && c.pending.ready
}

// WaitAcknowledged waits until every subtask acknowledged the pending checkpoint id (Manual).
func (c *Coordinator) WaitAcknowledged(ctx context.Context, id int64) error {
	return c.WaitFor(ctx, func([]*checkpoint.Metadata, map[int64]string) bool {
		return c.pending != nil && c.pending.info.ID == id && c.pending.ready
	})
}

// CompleteNow completes the pending checkpoint whose acknowledgements are all in (Manual)
// and returns its metadata.
func (c *Coordinator) CompleteNow() (*checkpoint.Metadata, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending
	if p == nil || !p.ready {
		return nil, fmt.Errorf("no checkpoint acknowledged by every subtask")
	}
	c.complete(p)
	return c.completed[len(c.completed)-1], nil
}

func (c *Coordinator) complete(p *pendingCheckpoint) {
	md := &checkpoint.Metadata{Format: checkpoint.Format, JobID: "local", JobName: c.plan.Name, CheckpointID: p.info.ID,
		Type: checkpoint.TypeName(p.info.Type), Triggered: p.info.Timestamp.UnixMilli(), Completed: time.Now().UnixMilli(),
		MaxParallelism: c.plan.MaxParallelism, Sealing: checkpoint.SealingSHA256, Finished: true}
	for _, vid := range c.vertices {
		v := c.plan.Vertices[vid]
		for _, name := range v.Operators {
			os := checkpoint.OperatorState{Name: name, Parallelism: v.Parallelism, Subtasks: make([]checkpoint.SubtaskState, v.Parallelism)}
			for s := range v.Parallelism {
				key := [2]int{vid, s}
				ops, ok := p.acks[key]
				if !ok {
					ops = c.finished[key]
				}
				os.Subtasks[s] = ops[name]
				md.Finished = md.Finished && ops[name].Finished
			}
			md.Operators = append(md.Operators, os)
		}
	}
	for key, ops := range p.acks {
		for _, st := range ops {
			if st.Finished {
				c.finished[key] = ops
			}
			break
		}
	}
	c.pending = nil
	c.completed = append(c.completed, md)
	for _, mb := range c.mail {
		mb.Post(dataflow.Mail{Kind: dataflow.MailComplete, ID: p.info.ID})
		if md.Finished {
			mb.Post(dataflow.Mail{Kind: dataflow.MailComplete, ID: p.info.ID, Final: true})
		}
	}
	if md.Finished {
		c.finalDone = true
	}
	c.signal()
	c.maybeFinal()
}

func (c *Coordinator) decline(id int64, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, seen := c.declined[id]; !seen {
		c.declined[id] = reason
	}
	if c.pending == nil || c.pending.info.ID != id {
		c.signal()
		return
	}
	c.pending = nil
	for _, mb := range c.mail {
		mb.Post(dataflow.Mail{Kind: dataflow.MailAborted, ID: id})
	}
	c.signal()
	c.maybeFinal()
}

func (c *Coordinator) endOfData(key [2]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended[key] = true
	c.maybeFinal()
}

// maybeFinal triggers at once when every source subtask has ended, as long as not every
// subtask has finished (the job then ends).
func (c *Coordinator) maybeFinal() {
	n := 0
	for _, vid := range c.vertices {
		if v := c.plan.Vertices[vid]; v.Source {
			for s := range v.Parallelism {
				if !c.ended[[2]int{vid, s}] {
					return
				}
				n++
			}
		}
	}
	if n > 0 && c.pending == nil && !c.allFinished() {
		c.triggerLocked(event.Checkpoint)
	}
}

func (c *Coordinator) allFinished() bool {
	for _, vid := range c.vertices {
		for s := range c.plan.Vertices[vid].Parallelism {
			if c.finished[[2]int{vid, s}] == nil {
				return false
			}
		}
	}
	return true
}

func (c *Coordinator) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Completed lists the completed checkpoints, oldest first.
func (c *Coordinator) Completed() []*checkpoint.Metadata {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*checkpoint.Metadata(nil), c.completed...)
}

// Declined is the reason the first subtask gave for declining checkpoint id ("" if none).
func (c *Coordinator) Declined(id int64) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.declined[id]
	return r, ok
}

// WaitFor waits until cond, evaluated under c's lock on every change, holds or ctx ends.
func (c *Coordinator) WaitFor(ctx context.Context, cond func(completed []*checkpoint.Metadata, declined map[int64]string) bool) error {
	for {
		c.mu.Lock()
		ok := cond(c.completed, c.declined)
		ch := c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for checkpoints: %w", ctx.Err())
		case <-ch:
		}
	}
}

// WaitCompleted waits until checkpoint id completed and returns its metadata.
func (c *Coordinator) WaitCompleted(ctx context.Context, id int64) (*checkpoint.Metadata, error) {
	var md *checkpoint.Metadata
	err := c.WaitFor(ctx, func(done []*checkpoint.Metadata, declined map[int64]string) bool {
		for _, m := range done {
			if m.CheckpointID == id {
				md = m
				return true
			}
		}
		if _, ok := declined[id]; ok {
			return true
		}
		return false
	})
	if err == nil && md == nil {
		c.mu.Lock()
		r := c.declined[id]
		c.mu.Unlock()
		return nil, fmt.Errorf("checkpoint %d declined: %s", id, r)
	}
	return md, err
}
