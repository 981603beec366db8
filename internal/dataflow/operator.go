package dataflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"

	"github.com/sluice-dev/sluice/internal/state"
	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// Operator is one running operator of a subtask, as Definition.NewOperator returns it. Every
// method is called from the subtask's goroutine (task.go): Open once, Process per element of
// its input, Finish once when the input has ended, and Close exactly once, after Finish on
// success or alone after a failure or cancellation. Chained operators each get the whole
// lifecycle: Open from the tail of the chain to its head, so an operator only ever emits into
// opened operators, then Finish and Close from the head to the tail.
type Operator interface {
	// Open prepares the operator; it does the I/O NewOperator must not do.
	Open(ctx context.Context, rc *RuntimeContext) error
	// Process handles one element of input (0 for one-input operators). The element's
	// record is valid only during the call: an operator keeping a value clones it.
	Process(input int, e *Element) error
	// Finish is called once, when the input has ended: emit what is buffered (a bounded
	// aggregate's results) and commit what was written (a file sink's part file).
	Finish() error
	// Close releases resources. Without a Finish before it, it commits nothing.
	Close() error
}

// Source is an operator without input. The task polls it, so control mail runs between two
// Poll calls and never inside one.
type Source interface {
	Operator
	// Poll emits at most one batch (a few hundred records) to the RuntimeContext's Output.
	Poll(ctx context.Context) (PollStatus, error)
	// Available is ready when a source that answered PollIdle has data again (the
	// generator's pacing timer, the socket reader). A source that never answers PollIdle may
	// return nil.
	Available() <-chan struct{}
}

// PollStatus is what a Source's Poll reports.
type PollStatus uint8

const (
	PollMore PollStatus = iota // call again at once
	PollIdle                   // wait for Available, mail or cancellation
	PollEnd                    // end of input: Finish follows
)

// NoInput is embedded by sources: they have no input to process.
type NoInput struct{}

// Process implements Operator: a source is never given input.
func (NoInput) Process(int, *Element) error { return errors.New("a source takes no input") }

// Element is what flows between operators. An operator that emits a new record copies the
// element and replaces the record (o := *e; o.Record = r), so fields it does not know about
// (the timestamp) travel on. Operators keep that copy in a field rather than on the stack: an
// *Element passed through the Output interface escapes, and a heap element per record is what
// the record path cannot afford.
//
// An operator that builds an element from nothing (a source, a Finish or OnTimer emitting
// results) sets Timestamp: NoTimestamp when the record has no event time. The zero value's 0
// is a time (the epoch), as in Flink, where the sentinel is Long.MIN_VALUE as well.
type Element struct {
	Record Record
	// Timestamp is the record's event time in milliseconds since the epoch, or NoTimestamp.
	// Sources set it from their `timestamp:` option; records without one travel without it
	// (docs/architecture.md, "Engine", §11 Event time).
	Timestamp int64
}

// NoTimestamp is the Timestamp of an element without event time (Flink's Long.MIN_VALUE).
const NoTimestamp int64 = math.MinInt64

// HasTimestamp reports whether the element carries an event time.
func (e *Element) HasTimestamp() bool { return e.Timestamp != NoTimestamp }

// Output is where an operator emits. The element is not kept after Collect returns.
type Output interface {
	Collect(e *Element) error
}

// JobInfo names the job a subtask belongs to.
type JobInfo struct {
	ID      string // empty where the job has no cluster id (RunLocal)
	Name    string
	Attempt int // 0 for the first run; restarts count up
}

// RuntimeContext is what an operator is opened with.
//
// Operators whose Shape says KeyedInput get a keyed state backend (KeyedState), scoped by the
// task to the key of the element being processed (CurrentKey); any operator may keep list
// states (ListState), snapshotted at every barrier, and every operator reads the clocks through
// Timers (keyed TimerHandlers also register timers there).
type RuntimeContext struct {
	Job         JobInfo
	Operator    string
	Subtask     int
	Parallelism int
	// MaxParallelism is the job's number of key groups and source splits
	// (pipeline.max-parallelism); keygroup.RangeOf(Subtask, Parallelism, MaxParallelism) is
	// what this subtask owns.
	MaxParallelism int
	Output         Output
	Logger         *slog.Logger   // with job, operator and subtask attributes; never nil
	Metrics        *VertexMetrics // the subtask's counters, shared by its chained operators
	Files          *JobFiles      // the job's authorized files; nil: the operator may open none
	Stdout         io.Writer      // for operators that print; never nil
	// Checkpointing is set when periodic checkpoints are on (execution.checkpointing.interval):
	// a two-phase-commit sink then commits at checkpoints rather than at the end of input.
	Checkpointing bool
	// Restored is the id of the checkpoint or savepoint the operator's state was restored
	// from; 0 on a fresh start.
	Restored int64
	// Credentials is how a connector obtains credentials for the service it reaches (a
	// Kerberos login context, a delegation token) from its TaskManager, without caring where
	// they come from (package credentials: the answer is a *credentials.Token or a
	// *credentials.Kerberos). Nil where the task holds none (RunLocal without a cluster).
	Credentials Credentials

	lists  *operatorLists          // list states (ListState)
	snaps  bool                    // the task takes snapshots (TaskIO.Checkpoints is set)
	ctx    context.Context         // the task's: CEL evaluation stops with it
	in     Schema                  // the input's schema; nil for a source
	ins    []Schema                // every input's schema (two for a join)
	inKey  KeySelector             // the input's key, for operators with a keyed input
	inKeys []KeySelector           // per input: its key (a join's left-key and right-key)
	keyed  state.Backend           // KeyedInput operators: the subtask's keyed state
	key    Value                   // the key of the element being processed (keyed operators)
	timers *timerService           // Timers
	side   func(tag string) Output // SideOutput
}

// Context is the task's context: it is cancelled when the task stops, so work an operator
// does outside Open (a flush at a barrier, a commit) ends with it.
func (rc *RuntimeContext) Context() context.Context { return rc.ctx }

// Timers is the operator's timer service: the clocks (processing time, the watermark at its
// input) for every operator, and timers for keyed operators implementing TimerHandler.
func (rc *RuntimeContext) Timers() TimerService {
	if rc.timers == nil {
		return &timerService{}
	}
	return rc.timers
}

// Credentials gives a running operator credentials for a service by name ("kafka",
// "postgres", ...), as its TaskManager holds them.
type Credentials interface {
	Credentials(ctx context.Context, service string) (any, error)
}

// KeyedState is the keyed state backend of an operator whose Shape says KeyedInput, nil for any
// other. It holds the key groups of Splits; before each Process the task sets its current key
// to the element's key, so the typed states (state.Value, ...) read and write that key's state.
// The task closes it after the operator.
func (rc *RuntimeContext) KeyedState() state.Backend { return rc.keyed }

// CurrentKey is the key of the element being processed by a keyed operator: the input's key,
// as the hash edge partitioned it (its encoding is the backend's current key). It is valid
// during Process only and may alias the input buffer: Clone it to keep it.
func (rc *RuntimeContext) CurrentKey() Value { return rc.key }

// Splits is the contiguous range of the job's MaxParallelism key groups, and of a source's
// splits, that this subtask owns: keygroup.RangeOf(Subtask, Parallelism, MaxParallelism). A
// source dividing its input into MaxParallelism splits reads the splits in this range, so the
// subtasks together read every split once at any parallelism.
func (rc *RuntimeContext) Splits() keygroup.Range {
	return keygroup.RangeOf(rc.Subtask, rc.Parallelism, rc.maxParallelism())
}

// maxParallelism is MaxParallelism, or DefaultMaxParallelism for a context built without one
// (never smaller than the parallelism, so every subtask still owns a split).
func (rc *RuntimeContext) maxParallelism() int {
	if rc.MaxParallelism > 0 {
		return rc.MaxParallelism
	}
	return max(DefaultMaxParallelism, rc.Parallelism)
}

// opError is an error that names the operator it happened in. The task names every error an
// operator returns unless it names an operator already: a key_by's key error raised in the
// aggregate after it keeps the key_by's name.
type opError struct {
	name string
	err  error
}

func (e *opError) Error() string { return fmt.Sprintf("operator %q: %v", e.name, e.err) }
func (e *opError) Unwrap() error { return e.err }

// OperatorError names operator name in err, an error raised while processing a record; an
// operator registered from outside the package wraps its errors with it as the built-in ones do.
func OperatorError(name string, err error) error { return opErr(name, err) }

// opErr names the operator in an error raised while processing a record.
func opErr(name string, err error) error { return &opError{name: name, err: err} }

// named names operator name in err, an error its Process, Poll or Finish returned. An error
// passed on from further down the chain (see chainOutput) names its operator already.
func named(name string, err error) error {
	if err == nil {
		return nil
	}
	var d *downstreamError
	if errors.As(err, &d) {
		return d.err
	}
	var o *opError
	if errors.As(err, &o) {
		return err
	}
	return opErr(name, err)
}

// downstreamError marks an error of the chain after an operator as it passes back through
// that operator's Process.
type downstreamError struct{ err error }

func (d *downstreamError) Error() string { return d.err.Error() }
func (d *downstreamError) Unwrap() error { return d.err }
