package dataflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// OperatorType is one kind of operator a job spec can name in `type:`.
type OperatorType struct {
	Name string            // "aggregate"
	New  func() Definition // zero options, filled by the YAML decoder
}

var registry struct {
	mu    sync.RWMutex
	types map[string]OperatorType
}

// Register makes t available to job specs. Two types with one name panic at start-up: it is a
// build error, not a runtime condition.
func Register(t OperatorType) {
	if t.Name == "" || t.New == nil {
		panic("dataflow: Register needs a name and a New function")
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.types == nil {
		registry.types = map[string]OperatorType{}
	}
	if _, dup := registry.types[t.Name]; dup {
		panic(fmt.Sprintf("dataflow: operator type %q registered twice", t.Name))
	}
	registry.types[t.Name] = t
}

// Lookup returns the registered type called name.
func Lookup(name string) (OperatorType, bool) {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	t, ok := registry.types[name]
	return t, ok
}

// Types lists the registered type names, sorted, for "unknown operator type" messages.
func Types() []string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	out := make([]string, 0, len(registry.types))
	for name := range registry.types {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Definition is one operator of a job: the options of its type (struct fields tagged
// `yaml:"..."`, optionally `want:"a CEL expression"` for error messages, see options.go) and
// what the type tells the planner, the authorizer and the runtime. It holds nothing per
// subtask.
type Definition interface {
	// Check validates and defaults the options alone and describes the operator's shape. It
	// runs once, when the spec is parsed.
	Check(op *OperatorSpec) (Shape, error)
	// Plan derives the output schema from the inputs and prepares what all subtasks share
	// (compiled expressions). It runs on the JobManager and on every TaskManager, possibly
	// more than once; it returns ErrSchemaDeferred when the schema needs the job's data.
	Plan(pc *PlanContext) (Schema, error)
	// Access lists the external data the operator reads and writes.
	Access(op *OperatorSpec) []Access
	// NewOperator returns the operator of one subtask. It does no I/O: Open does.
	NewOperator() Operator
}

// Shape is what the planner needs to know about an operator.
type Shape struct {
	Inputs      int  // 0: a source; 1: reads the records of its input
	Sink        bool // no output: naming it as an input is an error
	Partitioner bool // key_by: never a task, shapes the edges to its consumers
	KeyedInput  bool // its input must come through a Partitioner
	MaxSubtasks int  // 0: any; 1: one subtask (a socket is one connection)
	Bounded     bool // a source that ends by itself
}

// Access is one piece of external data: what the authorizer decides on at submit
// ("file:/srv/in.csv", "socket:host:9000") and the TaskManager enforces.
type Access struct {
	Scheme string // "file", "socket"
	Target string // file: the path as written (resolved by Spec.FileAccesses); socket: host:port
	Write  bool
}

// Resource is the access as the authorizer names it, "scheme:target".
func (a Access) Resource() string { return a.Scheme + ":" + a.Target }

// Partitioner is the Definition of key_by; the planner turns it into a hash edge.
type Partitioner interface {
	Definition
	// Key names the key and its kind, valid after Plan; Expr is valid after Check.
	Key() KeyInfo
	// NewKeySelector returns the key extractor of one subtask: CEL activations are not shared.
	NewKeySelector(ctx context.Context) KeySelector
}

// KeySelector extracts the key of a record. The Value may alias r.
type KeySelector interface {
	Key(r Record) (Value, error)
}

// KeyInfo describes the key of a Partitioner.
type KeyInfo struct {
	Name string // the field name, or "key" for an expression key
	Kind Kind
	Expr string // the key as the spec writes it, shown on hash edges
}

// TimestampingOperator is a Definition whose operator gives every record it emits an event
// time of its own (a window: its end - 1), so operators downstream see timestamped input.
type TimestampingOperator interface {
	Definition
	// StampsResults marks the type; it is never called.
	StampsResults()
}

// ErrSchemaDeferred is returned by Definition.Plan when the output schema can only be known
// where the job's data is read (a csv source taking its fields from the file's header).
var ErrSchemaDeferred = errors.New("schema deferred to the runtime")

// PlanContext is what Definition.Plan is given.
type PlanContext struct {
	Op      *OperatorSpec
	Inputs  []Schema   // one per input
	Keys    []*KeyInfo // per input: its key when it comes through a Partitioner, else nil
	Bounded bool       // every source of the job ends
	// Timestamped says the input's records carry event time: an operator upstream has a
	// `timestamp:` option or stamps its results (a TimestampingOperator).
	Timestamped bool
	opts        PlanOptions
}

// compileExpr compiles src against input's schema, within pipeline.expression.max-cost.
func (pc *PlanContext) compileExpr(input int, src string) (*celExpr, error) {
	return compileExpr(pc.Inputs[input], src, pc.opts.MaxExpressionCost)
}

// CSVHeader reads the header line of the operator's input file where the job runs; it returns
// ErrSchemaDeferred where the job's data is not opened (the JobManager).
func (pc *PlanContext) CSVHeader() ([]string, error) {
	if pc.opts.CSVHeader == nil {
		return nil, ErrSchemaDeferred
	}
	return pc.opts.CSVHeader(pc.Op)
}

// NonReplayable is implemented by the Definition of a source that cannot read its input
// again from a checkpointed position (the socket source): with checkpointing, records it
// read after the last completed checkpoint are lost on recovery. The JobManager asks at
// submit (Spec.ReplayWarnings) and warns rather than refusing.
type NonReplayable interface {
	CannotReplay() bool
}

// ReplayWarnings lists, for a job that will checkpoint, one warning per source that cannot
// replay its input, naming the operator and its type.
func (s *Spec) ReplayWarnings() []string {
	var out []string
	for _, o := range s.Operators {
		if nr, ok := o.Options.(NonReplayable); ok && nr.CannotReplay() {
			out = append(out, fmt.Sprintf("operator %q (%s) cannot replay its input: records read after the last checkpoint are lost on recovery (at most once)", o.Name, o.Type))
		}
	}
	return out
}
