package dataflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/dataflow/event"
	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/hashmap"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// CheckpointListener is implemented by operators that act on a checkpoint's outcome (a
// two-phase-commit sink commits in NotifyCheckpointComplete). The task finds it by type
// assertion at Open and calls it from its goroutine when the mail arrives.
type CheckpointListener interface {
	NotifyCheckpointComplete(id int64) error
	NotifyCheckpointAborted(id int64) error
}

// task runs one subtask: the chain of its vertex's operators in one goroutine, fed by its
// input gate or polled from its source, with control mail run between elements.
type task struct {
	name    string // "vertex %q subtask %d", for errors of the task itself
	chain   []link // head first
	src     Source // the head, on a source vertex
	out     *output
	in      InputGate
	mail    *Mailbox
	metrics *VertexMetrics

	opened    int // operators opened, counted from the tail
	listeners []link

	// A keyed head (Shape.KeyedInput): its state backend, the input's key and the context
	// whose CurrentKey the task sets before each Process.
	keyed   state.Backend
	keySel  KeySelector   // the input's key
	keySels []KeySelector // a two-input head's: per input
	keyRC   *RuntimeContext
	// chInput is the logical input of each input channel, for a two-input head (a join);
	// nil: every channel feeds input 0.
	chInput []int
	keyBuf  []byte
	maxPar  int

	rec Record
	el  Element

	// Event time (eventtime.go, timers.go). gens and linkWM are per link of the chain.
	gens       []*wmGen        // the operator's event time where it assigns one
	hasGens    bool            // some link emits watermarks: the task ticks
	valve      *watermarkValve // tasks with input
	linkWM     []int64         // the watermark at each operator's input
	timers     *timerService   // the keyed head's, when it is a TimerHandler
	statusIdle bool            // WATERMARK_STATUS IDLE was sent downstream last
	wmInterval time.Duration   // pipeline.auto-watermark-interval
	nextTick   int64           // ms: the next periodic watermark
	wakeTimer  *time.Timer     // posts mailTick at wakeMs
	wakeMs     int64           // math.MaxInt64: no wake-up scheduled

	// Checkpointing (nil cp: none). lists and opIndex are per link of the chain.
	subtask     int
	cp          *TaskCheckpointing
	opIndex     []int            // the operator's index in the spec: its files' prefix
	lists       []*operatorLists // list states registered through the RuntimeContext
	align       *aligner         // tasks with input
	asyncCtx    context.Context  // the asynchronous parts of snapshots stop with it
	asyncStop   context.CancelFunc
	async       sync.WaitGroup // snapshot goroutines; the task waits for them before Close
	finished    bool           // the chain finished (or was restored finished)
	finalID     int64          // the first checkpoint taken after finishing
	done        bool           // a checkpoint >= finalID completed: the task may end
	suspended   int64          // a suspending savepoint taken, its outcome awaited
	stopped     bool           // that savepoint completed: end without Finish
	cancelSent  int64          // highest CANCEL_BARRIER sent downstream
	lastTrigger int64          // highest trigger taken (sources)
	// restoredFinished: every operator of the chain had finished in the checkpoint
	// restored, so the chain is not finished again (its results went out before).
	restoredFinished bool
}

// link is one operator of the chain.
type link struct {
	name string
	op   Operator
}

// chainOutput is the Output of an operator followed by another in the chain: emitting is
// calling the next operator's Process. Its errors come back marked as the downstream
// operator's, so the emitting operator's name is not put on them.
type chainOutput struct{ next link }

func (c *chainOutput) Collect(e *Element) error {
	if err := c.next.op.Process(0, e); err != nil {
		return &downstreamError{named(c.next.name, err)}
	}
	return nil
}

// newTask builds the chain of vertex v's subtask and opens it, tail first.
func (p *Plan) newTask(ctx context.Context, v *Vertex, subtask int, tio TaskIO, out *output) (*task, error) {
	t := &task{name: fmt.Sprintf("vertex %q subtask %d", v.Name, subtask), out: out, in: tio.Input,
		mail: tio.Mailbox, metrics: out.metrics, chain: make([]link, len(v.Operators)), subtask: subtask,
		cp: tio.Checkpoints, opIndex: make([]int, len(v.Operators)), lists: make([]*operatorLists, len(v.Operators)),
		gens: make([]*wmGen, len(v.Operators)), linkWM: make([]int64, len(v.Operators)),
		wmInterval: tio.WatermarkInterval, wakeMs: math.MaxInt64}
	if t.wmInterval <= 0 {
		t.wmInterval = DefaultAutoWatermarkInterval
	}
	for i := range t.linkWM {
		t.linkWM[i] = NoTimestamp
	}
	t.metrics.InputWatermark.Store(NoTimestamp)
	t.metrics.OutputWatermark.Store(NoTimestamp)
	if t.in != nil {
		t.valve = newWatermarkValve(t.in.Channels())
	}
	if t.cp != nil {
		if t.mail == nil {
			t.mail = NewMailbox()
		}
		if t.cp.Restore != nil && t.cp.RestoreFiles == nil {
			return nil, fmt.Errorf("run subtask %s: %w", t.name, errNoRestoreFiles)
		}
		if t.cp.Files == nil || t.cp.Ack == nil || t.cp.Decline == nil {
			return nil, fmt.Errorf("run subtask %s: TaskCheckpointing needs Files, Ack and Decline", t.name)
		}
		if t.in != nil {
			t.align = newAligner(t.in, t.in.Channels(), t.cp.Mode == ExactlyOnce)
		}
		t.asyncCtx, t.asyncStop = context.WithCancel(ctx)
		t.restoredFinished = t.cp.Restore != nil
	}
	stdout := tio.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	job := tio.Job
	if job.Name == "" {
		job.Name = p.Name
	}
	logger := tio.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for i, id := range v.Operators {
		oi := p.ops[id]
		t.chain[i] = link{name: oi.spec.Name, op: oi.def.NewOperator()}
		if et := oi.spec.EventTime; et != nil {
			t.gens[i] = &wmGen{link: i, op: oi.spec, ts: oi.tsField, wm: et.Watermark, maxTs: NoTimestamp, emitted: NoTimestamp}
			t.hasGens = t.hasGens || et.Watermark != nil
		}
		t.opIndex[i] = oi.index
		if o := t.cp.restoreOf(oi.spec.Name); o == nil || !o.Finished {
			t.restoredFinished = false
		}
	}
	if _, timers := t.chain[0].op.(TimerHandler); t.mail == nil && (t.hasGens || timers) {
		// Timers and periodic watermarks wake the task through its mailbox; a task with
		// neither keeps none, so its record path checks no mail (as before event time).
		t.mail = NewMailbox()
	}
	var next Output = out
	for i := len(t.chain) - 1; i >= 0; i-- {
		l, oi := t.chain[i], p.ops[v.Operators[i]]
		if g := t.gens[i]; g != nil {
			next = &timedOutput{t: t, g: g, next: next}
		}
		rc := &RuntimeContext{Job: job, Operator: l.name, Subtask: subtask, Parallelism: v.Parallelism, MaxParallelism: p.MaxParallelism,
			Output: next, Metrics: t.metrics, Files: tio.Files, Stdout: stdout, ctx: ctx, Credentials: tio.Credentials,
			Logger: logger.With("job", job.ID, "job-name", job.Name, "attempt", job.Attempt, "operator", l.name, "subtask", subtask),
			timers: &timerService{t: t, link: i}}
		rc.side = func(tag string) Output { return out.side(l.name, tag) }
		if t.cp != nil {
			rc.Checkpointing, rc.snaps = t.cp.Periodic, true
			rc.lists = &operatorLists{}
			if t.cp.Restore != nil {
				rc.Restored = t.cp.Restore.CheckpointID
			}
			if o := t.cp.restoreOf(l.name); o != nil && len(o.Lists) > 0 {
				restored, err := restoredLists(ctx, t.cp.RestoreFiles, o)
				if err != nil {
					t.close()
					return nil, opErr(l.name, fmt.Errorf("restore from checkpoint %d: %w", rc.Restored, err))
				}
				rc.lists.restored = restored
			}
			t.lists[i] = rc.lists
		}
		if oi.in != nil {
			rc.in = oi.in.schema
			for _, in := range oi.ins {
				rc.ins = append(rc.ins, in.schema)
			}
			if part, ok := oi.in.def.(Partitioner); ok && oi.in.shape.Partitioner {
				rc.inKey = part.NewKeySelector(ctx)
			}
			if len(oi.ins) > 1 {
				if err := t.openInputs(p, v, i, rc); err != nil {
					t.close()
					return nil, err
				}
			}
			if oi.shape.KeyedInput {
				if err := t.openKeyed(ctx, p, v, subtask, tio, rc, i); err != nil {
					t.close()
					return nil, err
				}
			}
		} else {
			src, ok := l.op.(Source)
			if !ok || i != 0 {
				t.close()
				return nil, fmt.Errorf("operator %q: type %s has no input but its operator is not a dataflow.Source (Poll, Available): fix the type's NewOperator", l.name, oi.spec.Type)
			}
			t.src = src
		}
		t.opened++
		if err := l.op.Open(ctx, rc); err != nil {
			t.close()
			if errors.As(err, new(*opError)) {
				return nil, err
			}
			return nil, opErr(l.name, fmt.Errorf("open: %w", err))
		}
		if _, ok := l.op.(CheckpointListener); ok {
			t.listeners = append(t.listeners, l)
		}
		next = &chainOutput{next: l}
	}
	return t, nil
}

// inputMapper is implemented by input gates that know which logical input each channel
// feeds (network.InputGate registered with a layout).
type inputMapper interface{ Input(ch int) int }

// openInputs prepares a two-input head: the input of each channel, from the plan's layout
// of the gate, and the key of each input when the operator keys them itself.
func (t *task) openInputs(p *Plan, v *Vertex, i int, rc *RuntimeContext) error {
	if i != 0 {
		return opErr(rc.Operator, errors.New("a two-input operator must head its task"))
	}
	t.chInput = p.channelInputs(v.ID)
	if t.in == nil || len(t.chInput) != t.in.Channels() {
		return fmt.Errorf("%s: the input gate has %d channels, the plan's layout %d: register the gate with the plan's InputLayout", t.name, channelsOf(t.in), len(t.chInput))
	}
	if m, ok := t.in.(inputMapper); ok {
		for ch, in := range t.chInput {
			if got := m.Input(ch); got != in {
				return fmt.Errorf("%s: input channel %d feeds input %d in the gate, %d in the plan: register the gate with the plan's InputLayout", t.name, ch, got, in)
			}
		}
	}
	if ki, ok := p.ops[v.Operators[0]].def.(KeyedInputs); ok {
		for in := range p.ops[v.Operators[0]].ins {
			rc.inKeys = append(rc.inKeys, ki.InputKey(in).NewKeySelector(rc.ctx))
		}
		rc.inKey = rc.inKeys[0]
	}
	return nil
}

func channelsOf(g InputGate) int {
	if g == nil {
		return 0
	}
	return g.Channels()
}

// openKeyed creates the keyed state backend of the chain's keyed head for the subtask's
// key-group range and gives it to rc.
func (t *task) openKeyed(ctx context.Context, p *Plan, v *Vertex, subtask int, tio TaskIO, rc *RuntimeContext, i int) error {
	if i != 0 || rc.inKey == nil {
		// The planner puts a keyed operator at the head of a task fed by a hash edge; a
		// keyed operator anywhere else would see keys of other subtasks' key groups.
		return opErr(rc.Operator, fmt.Errorf("a keyed operator must head its task, reading a hash-partitioned input"))
	}
	f := tio.State
	if f == nil {
		f = hashmap.Factory{}
	}
	r := rc.Splits()
	var restores []state.Restore
	if o := t.cp.restoreOf(rc.Operator); o != nil {
		var err error
		if restores, err = keyedRestores(t.cp.RestoreFiles, o, t.cp.SameJob); err != nil {
			return opErr(rc.Operator, fmt.Errorf("restore from checkpoint %d: %w", o.CheckpointID, err))
		}
	}
	maxPar := rc.maxParallelism()
	b, err := f.New(ctx, state.Config{Job: rc.Job.ID, Operator: rc.Operator, Subtask: subtask,
		KeyGroups: state.KeyGroupRange{First: r.First, Last: r.Last}, MaxParallelism: maxPar,
		Logger: rc.Logger, WorkDir: tio.StateWorkDir(rc.Operator, subtask), Incremental: tio.StateIncremental,
		// A restored key must be in the key group it was filed under: a snapshot of another
		// job or max parallelism is refused rather than misrouted.
		KeyGroupOf: func(key []byte) int { return keygroup.Of(keygroup.Hash(key), maxPar) }}, restores)
	if err != nil {
		if len(restores) > 0 {
			return opErr(rc.Operator, fmt.Errorf("restore %s state backend: %w", f.Name(), err))
		}
		return opErr(rc.Operator, fmt.Errorf("create %s state backend: %w", f.Name(), err))
	}
	rc.keyed = b
	t.keyed, t.keySel, t.keySels, t.keyRC, t.maxPar = b, rc.inKey, rc.inKeys, rc, rc.maxParallelism()
	if h, ok := t.chain[i].op.(TimerHandler); ok {
		t.timers = rc.timers
		if err := t.timers.open(h, b, maxPar); err != nil {
			return opErr(rc.Operator, err)
		}
	}
	return nil
}

// setKey scopes the keyed head's state to the key of r: the key's encoding, as the hash edge
// hashed it, in its key group.
func (t *task) setKey(input int, r Record) error {
	sel := t.keySel
	if t.keySels != nil {
		sel = t.keySels[input]
	}
	k, err := sel.Key(r)
	if err != nil {
		return err
	}
	t.keyBuf = appendValue(t.keyBuf[:0], k)
	// A run of records of one key (sorted or bursty input) leaves the backend on that key:
	// the key group, a function of the same bytes, is the same, so hashing it again and
	// rescoping the backend would be wasted work on the per-record path.
	if !bytes.Equal(t.keyBuf, t.keyed.CurrentKey()) {
		t.keyed.SetCurrentKey(t.keyBuf, keygroup.Of(keygroup.Hash(t.keyBuf), t.maxPar))
	}
	t.keyRC.key = k
	return nil
}

// run drives the chain until its input ends, then finishes and closes it and ends the
// subtask's partitions. On failure or cancellation it closes the operators without finishing
// them and leaves the partitions unended.
//
// End of input is explicit: a source that ends, or a task whose every input channel delivered
// END_OF_DATA, finishes its chain and sends END_OF_DATA downstream; without checkpointing it
// then ends its partitions at once. With checkpointing it goes on answering barriers (as
// finished) and ends its partitions only once a checkpoint it took after finishing has
// completed, so that what it emitted last is committed. Channels that end their partition
// without END_OF_DATA mean the job was stopped: the task closes without Finish and ends its
// partitions without END_OF_DATA, so the tasks downstream close unfinished as well.
func (t *task) run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			t.stopAsync()
			t.close()
			if ctx.Err() != nil {
				// An operator or writer that failed because of the cancellation: report the
				// cancellation itself, as the runtime expects.
				err = ctx.Err()
			}
		}
	}()
	t.startTicks()
	if t.src != nil {
		if !t.restoredFinished {
			if err := t.poll(ctx); err != nil {
				return err
			}
		}
		if t.finished && t.suspended != 0 {
			// Drained by a trigger that ran with the last Poll's mail, as that Poll
			// ended the input: wait for the savepoint's outcome as poll would.
			if err := t.waitMail(ctx, func() bool { return t.suspended == 0 || t.stopped }); err != nil {
				return err
			}
		}
		if !t.stopped {
			// Finished already when a drain (a terminating savepoint) ended the input
			// and the savepoint then failed: the job ends as one whose input ended.
			if !t.finished {
				if err := t.finish(); err != nil {
					return err
				}
			}
			if t.cp != nil && t.cp.Periodic {
				// The job ends on a final checkpoint that holds every task finished, so
				// that sinks commit what they wrote last; without periodic checkpoints
				// there is none, and the source ends now, as its sinks commit at Finish.
				if t.cp.EndOfData != nil {
					t.cp.EndOfData()
				}
				// A terminating savepoint (stop --drain) taken while the source waited
				// ends it as well, its completion having committed the sinks.
				if err := t.waitMail(ctx, func() bool { return t.done || t.stopped }); err != nil {
					return err
				}
			}
		}
	} else if err := t.read(ctx); err != nil {
		return err
	}
	return t.end()
}

// read feeds the head the records of the input gate until every channel has ended,
// finishing the chain once every channel delivered END_OF_DATA. A read blocked on the gate
// wakes for mail.
func (t *task) read(ctx context.Context) error {
	if t.in == nil {
		return fmt.Errorf("run subtask %s: no input gate for a non-source vertex", t.name)
	}
	head := t.chain[0]
	channels := t.in.Channels()
	endOfData := make([]bool, channels) // per channel: END_OF_DATA delivered
	ends := 0                           // channels that sent END_OF_DATA
	for {
		d, err := t.in.NextDelivery(ctx, t.mail.Wake())
		switch {
		case err == nil:
		case err == io.EOF:
			if t.cp == nil {
				return nil
			}
			// Nothing more can arrive but mail: a finished task waits for its final
			// checkpoint, a suspended one for its savepoint's outcome, so that sinks commit.
			// A completed stop savepoint ends the wait also for a task that finished
			// before it (stop --drain): no final checkpoint follows it.
			return t.waitMail(ctx, func() bool {
				return t.stopped || ((!t.finished || t.done || t.finalID == 0) && t.suspended == 0)
			})
		case errors.Is(err, event.ErrWoken):
			if err := t.runMail(); err != nil {
				return err
			}
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return fmt.Errorf("%s: read input: %w", t.name, err)
		}
		ch := int(d.Channel)
		if ch < 0 || ch >= channels {
			return fmt.Errorf("%s: input delivered channel %d of %d", t.name, ch, channels)
		}
		switch d.Kind {
		case event.DeliverRecord, event.DeliverTimedRecord:
			if endOfData[ch] {
				return fmt.Errorf("%s: input channel %d sent a record after END_OF_DATA", t.name, ch)
			}
			t.metrics.ReadRecords.Add(1)
			t.metrics.ReadBytes.Add(int64(len(d.Data)))
			data := d.Data
			t.el.Timestamp = NoTimestamp
			if d.Kind == event.DeliverTimedRecord {
				var err error
				if t.el.Timestamp, data, err = SplitTimestamp(data); err != nil {
					return fmt.Errorf("%s: input channel %d: %w", t.name, ch, err)
				}
			}
			if err := DecodeRecord(data, &t.rec); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			t.el.Record = t.rec
			input := 0
			if t.chInput != nil {
				input = t.chInput[ch]
			}
			if t.keyed != nil {
				if err := t.setKey(input, t.rec); err != nil {
					return named(head.name, err)
				}
			}
			if err := head.op.Process(input, &t.el); err != nil {
				return named(head.name, err)
			}
			if t.mail.Pending() {
				if err := t.runMail(); err != nil {
					return err
				}
			}
		case event.DeliverEvent:
			ev, err := event.Decode(d.Data)
			if err != nil {
				return fmt.Errorf("%s: input channel %d: %w", t.name, ch, err)
			}
			switch ev.Kind {
			case event.KindEndOfData:
				if endOfData[ch] {
					return fmt.Errorf("%s: input channel %d sent END_OF_DATA twice", t.name, ch)
				}
				endOfData[ch] = true
				if err := t.valveResult(t.valve.end(ch)); err != nil {
					return err
				}
				if ends++; ends == channels {
					if err := t.finish(); err != nil {
						return err
					}
				}
			case event.KindWatermark:
				if wm, ok := t.valve.watermark(ch, ev.Watermark); ok {
					if err := t.inputWatermark(wm); err != nil {
						return err
					}
				}
			case event.KindWatermarkStatus:
				if err := t.valveResult(t.valve.status(ch, ev.Status == event.Idle)); err != nil {
					return err
				}
			case event.KindBarrier, event.KindCancelBarrier:
				if t.align == nil {
					// Refused rather than passed over: a barrier nobody aligns on would
					// leave its checkpoint waiting without a word.
					return fmt.Errorf("%s: input channel %d sent %v: checkpointing is not enabled for this task", t.name, ch, ev)
				}
				var r alignResult
				if ev.Kind == event.KindBarrier {
					r = t.align.barrier(ch, ev.Barrier)
				} else {
					r = t.align.cancelBarrier(ev.Barrier.ID)
				}
				if err := t.aligned(r); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%s: input channel %d sent %v", t.name, ch, ev)
			}
		case event.DeliverEnd:
			// A channel ending without END_OF_DATA was stopped, not ended: the chain is
			// then never finished, as Finish would emit results of partial input as final.
			if t.align != nil {
				if err := t.aligned(t.align.channelEnded(ch)); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("%s: input channel %d: unknown %v", t.name, ch, d.Kind)
		}
	}
}

// aligned acts on what the aligner decided.
func (t *task) aligned(r alignResult) error {
	if r.subsumed != 0 {
		t.cp.Decline(r.subsumed, fmt.Sprintf("%s: checkpoint %d subsumed by a newer barrier before its alignment completed", t.name, r.subsumed))
	}
	if r.cancel != 0 {
		if err := t.cancelDownstream(r.cancel); err != nil {
			return err
		}
	}
	if r.snapshot {
		if err := t.snapshot(r.barrier, r.alignment); err != nil {
			return err
		}
		t.noteSuspend(r.barrier)
	}
	return nil
}

// noteSuspend remembers a suspending savepoint: the task waits for its outcome.
func (t *task) noteSuspend(b event.Barrier) {
	if b.Type == event.SavepointSuspend || b.Type == event.SavepointTerminate {
		t.suspended = b.ID
	}
}

// poll polls the head source until it ends, running mail between two Poll calls and waiting
// for data, mail or cancellation while it is idle. After a suspending savepoint it polls no
// more until the savepoint's outcome: completed, the task stops; aborted, it resumes.
func (t *task) poll(ctx context.Context) error {
	name := t.chain[0].name
	for {
		if t.suspended != 0 {
			if err := t.waitMail(ctx, func() bool { return t.suspended == 0 || t.stopped }); err != nil {
				return err
			}
			if t.stopped || t.finished {
				// Stopped; or drained and the savepoint failed: the input has ended.
				return nil
			}
		}
		st, err := t.src.Poll(ctx)
		if err != nil {
			return named(name, err)
		}
		if t.mail.Pending() {
			if err := t.runMail(); err != nil {
				return err
			}
		}
		switch st {
		case PollEnd:
			return nil
		case PollIdle:
			if t.suspended != 0 {
				continue
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.src.Available():
			case <-t.mail.Wake():
			}
		default:
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
}

// waitMail runs mail until cond holds.
func (t *task) waitMail(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.mail.Wake():
		}
		if err := t.runMail(); err != nil {
			return err
		}
	}
	return nil
}

// runMail runs the pending control mail.
func (t *task) runMail() error {
	for _, m := range t.mail.take() {
		if m.Kind == mailTick {
			if err := t.tick(); err != nil {
				return err
			}
			continue
		}
		if t.cp == nil && m.Kind != MailComplete && m.Kind != MailAborted {
			// Refused rather than dropped: a checkpoint that waits for this task would
			// otherwise never hear why it does not complete.
			return fmt.Errorf("%s: %v mail: checkpointing is not enabled for this task", t.name, m.Kind)
		}
		switch m.Kind {
		case MailTrigger:
			if t.src == nil {
				t.cp.Decline(m.Barrier.ID, fmt.Sprintf("%s: a trigger reached a task with input (barriers reach it from upstream)", t.name))
				continue
			}
			if m.Barrier.ID <= t.lastTrigger {
				continue // a repeated or late trigger
			}
			t.lastTrigger = m.Barrier.ID
			if m.Barrier.Type == event.SavepointTerminate && !t.finished {
				// stop --drain (docs/architecture.md, "Engine", §8.1): the input ends
				// before the barrier, so the chain finishes (bounded aggregates and
				// windows emit) and END_OF_DATA goes downstream ahead of the barrier,
				// finishing every task before it snapshots. The savepoint then holds
				// the whole job finished.
				if err := t.finish(); err != nil {
					return err
				}
			}
			if err := t.snapshot(m.Barrier, 0); err != nil {
				return err
			}
			t.noteSuspend(m.Barrier)
		case MailComplete, MailAborted:
			if err := t.notify(m); err != nil {
				return err
			}
		case mailCancelDownstream:
			if err := t.cancelDownstream(m.ID); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unknown %v", t.name, m.Kind)
		}
	}
	return nil
}

// notify tells the operators and the keyed backend of a checkpoint's outcome, and ends the
// waits that depend on it.
func (t *task) notify(m Mail) error {
	if m.Final {
		// The final checkpoint's own completion came before and was told to the operators.
		if t.cp != nil && t.finalID != 0 {
			t.done = true
		}
		return nil
	}
	for _, l := range t.listeners {
		cl := l.op.(CheckpointListener)
		var err error
		if m.Kind == MailComplete {
			err = cl.NotifyCheckpointComplete(m.ID)
		} else {
			err = cl.NotifyCheckpointAborted(m.ID)
		}
		if err != nil {
			return opErr(l.name, fmt.Errorf("%v %d: %w", m.Kind, m.ID, err))
		}
	}
	if t.cp == nil {
		return nil
	}
	if m.Kind == MailComplete {
		if t.keyed != nil {
			t.keyed.NotifyCheckpointComplete(m.ID)
		}
		if t.suspended != 0 && m.ID >= t.suspended {
			t.stopped = true
		}
		return nil
	}
	if t.align != nil {
		t.align.aborted(m.ID)
	}
	if m.ID == t.suspended {
		t.suspended = 0 // resume
	}
	return nil
}

// finish finishes the chain head to tail, so each operator may still emit into the ones
// after it, then sends END_OF_DATA to every target. A chain restored finished is not
// finished again: its results went out before the checkpoint.
func (t *task) finish() error {
	if !t.restoredFinished {
		for i, l := range t.chain {
			if err := l.op.Finish(); err != nil {
				return named(l.name, err)
			}
			if err := t.endEventTime(i); err != nil {
				return err
			}
		}
	}
	t.finished = true
	return t.out.endOfData()
}

// end closes every operator and then ends the subtask's partitions.
func (t *task) end() error {
	t.async.Wait()
	if err := t.close(); err != nil {
		return err
	}
	return t.out.finish()
}

// stopAsync cancels the asynchronous parts of snapshots and waits for them.
func (t *task) stopAsync() {
	if t.asyncStop != nil {
		t.asyncStop()
	}
	t.async.Wait()
}

// close closes every opened operator once, head to tail, then the keyed state backend, and
// returns the first error.
func (t *task) close() error {
	var first error
	for i, l := range t.chain {
		if i < len(t.chain)-t.opened {
			continue // never opened
		}
		if err := l.op.Close(); err != nil && first == nil {
			first = opErr(l.name, fmt.Errorf("close: %w", err))
		}
	}
	t.opened = 0
	if t.wakeTimer != nil {
		t.wakeTimer.Stop()
	}
	if t.keyed != nil {
		if err := t.keyed.Close(); err != nil && first == nil {
			first = fmt.Errorf("%s: close state backend: %w", t.name, err)
		}
		t.keyed = nil
	}
	if t.asyncStop != nil {
		t.asyncStop()
	}
	return first
}
