package dataflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

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
	keyed  state.Backend
	keySel KeySelector
	keyRC  *RuntimeContext
	keyBuf []byte
	maxPar int

	rec Record
	el  Element
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
		mail: tio.Mailbox, metrics: out.metrics, chain: make([]link, len(v.Operators))}
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
	}
	var next Output = out
	for i := len(t.chain) - 1; i >= 0; i-- {
		l, oi := t.chain[i], p.ops[v.Operators[i]]
		rc := &RuntimeContext{Job: job, Operator: l.name, Subtask: subtask, Parallelism: v.Parallelism, MaxParallelism: p.MaxParallelism,
			Output: next, Metrics: t.metrics, Files: tio.Files, Stdout: stdout, ctx: ctx,
			Logger: logger.With("job", job.ID, "job-name", job.Name, "attempt", job.Attempt, "operator", l.name, "subtask", subtask)}
		if oi.in != nil {
			rc.in = oi.in.schema
			if part, ok := oi.in.def.(Partitioner); ok && oi.in.shape.Partitioner {
				rc.inKey = part.NewKeySelector(ctx)
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
	b, err := f.New(ctx, state.Config{Job: rc.Job.ID, Operator: rc.Operator, Subtask: subtask,
		KeyGroups: state.KeyGroupRange{First: r.First, Last: r.Last}, MaxParallelism: rc.maxParallelism(),
		Logger: rc.Logger}, nil)
	if err != nil {
		return opErr(rc.Operator, fmt.Errorf("create %s state backend: %w", f.Name(), err))
	}
	rc.keyed = b
	t.keyed, t.keySel, t.keyRC, t.maxPar = b, rc.inKey, rc, rc.maxParallelism()
	return nil
}

// setKey scopes the keyed head's state to the key of r: the key's encoding, as the hash edge
// hashed it, in its key group.
func (t *task) setKey(r Record) error {
	k, err := t.keySel.Key(r)
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
// then ends its partitions at once. Channels that end their partition without END_OF_DATA
// mean the job was stopped: the task closes without Finish and ends its partitions without
// END_OF_DATA, so the tasks downstream close unfinished as well.
func (t *task) run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			t.close()
			if ctx.Err() != nil {
				// An operator or writer that failed because of the cancellation: report the
				// cancellation itself, as the runtime expects.
				err = ctx.Err()
			}
		}
	}()
	if t.src != nil {
		if err := t.poll(ctx); err != nil {
			return err
		}
		if err := t.finish(); err != nil {
			return err
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
			return nil
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
		case event.DeliverRecord:
			if endOfData[ch] {
				return fmt.Errorf("%s: input channel %d sent a record after END_OF_DATA", t.name, ch)
			}
			t.metrics.ReadRecords.Add(1)
			t.metrics.ReadBytes.Add(int64(len(d.Data)))
			if err := DecodeRecord(d.Data, &t.rec); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			t.el.Record = t.rec
			if t.keyed != nil {
				if err := t.setKey(t.rec); err != nil {
					return named(head.name, err)
				}
			}
			if err := head.op.Process(0, &t.el); err != nil {
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
			if ev.Kind != event.KindEndOfData {
				// Refused rather than passed over: a barrier nobody aligns on would leave its
				// checkpoint waiting without a word.
				return fmt.Errorf("%s: input channel %d sent %v: tasks do not take checkpoints yet", t.name, ch, ev)
			}
			if endOfData[ch] {
				return fmt.Errorf("%s: input channel %d sent END_OF_DATA twice", t.name, ch)
			}
			endOfData[ch] = true
			if ends++; ends == channels {
				if err := t.finish(); err != nil {
					return err
				}
			}
		case event.DeliverEnd:
			// A channel ending without END_OF_DATA was stopped, not ended: the chain is
			// then never finished, as Finish would emit results of partial input as final.
		default:
			return fmt.Errorf("%s: input channel %d: unknown %v", t.name, ch, d.Kind)
		}
	}
}

// poll polls the head source until it ends, running mail between two Poll calls and waiting
// for data, mail or cancellation while it is idle.
func (t *task) poll(ctx context.Context) error {
	name := t.chain[0].name
	for {
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

// runMail runs the pending control mail.
func (t *task) runMail() error {
	for _, m := range t.mail.take() {
		switch m.Kind {
		case MailComplete, MailAborted:
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
		default:
			// Refused rather than dropped: a checkpoint that waits for this task would
			// otherwise never hear why it does not complete.
			return fmt.Errorf("%s: %v mail: tasks do not take checkpoints yet", t.name, m.Kind)
		}
	}
	return nil
}

// finish finishes the chain head to tail, so each operator may still emit into the ones
// after it, then sends END_OF_DATA to every target.
func (t *task) finish() error {
	for _, l := range t.chain {
		if err := l.op.Finish(); err != nil {
			return named(l.name, err)
		}
	}
	return t.out.endOfData()
}

// end closes every operator and then ends the subtask's partitions.
func (t *task) end() error {
	if err := t.close(); err != nil {
		return err
	}
	return t.out.finish()
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
	if t.keyed != nil {
		if err := t.keyed.Close(); err != nil && first == nil {
			first = fmt.Errorf("%s: close state backend: %w", t.name, err)
		}
		t.keyed = nil
	}
	return first
}
