package dataflow

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/state/keygroup"
)

// Partitioning of an edge.
const (
	PartitionHash      = "hash"      // by key: every record of a key reaches one subtask
	PartitionRebalance = "rebalance" // round-robin over all target subtasks
	PartitionForward   = "forward"   // subtask i to subtask i (equal parallelism)
)

// Plan is the job graph after chaining: what the JobManager schedules. Exported fields marshal
// to JSON for shipping and display; compiled expressions live in unexported fields, and a
// TaskManager rebuilds an identical plan from the same spec bytes and parameters (ids are
// assigned deterministically in spec order).
type Plan struct {
	Name     string    `json:"name"`
	Vertices []*Vertex `json:"vertices"`
	Edges    []*Edge   `json:"edges"`
	Bounded  bool      `json:"bounded"` // all sources end
	// MaxParallelism is the number of key groups and source splits
	// (pipeline.max-parallelism): hash edges route by key group, sources read by split.
	MaxParallelism int `json:"maxParallelism"`

	ops  map[string]*opInfo
	spec *Spec
	opts PlanOptions // as planned, for a local run's re-planning
}

// Vertex is one task: a chain of operators run in one goroutine per subtask.
type Vertex struct {
	ID          int      `json:"id"`
	Name        string   `json:"name"` // operators joined by " -> "
	Operators   []string `json:"operators"`
	Parallelism int      `json:"parallelism"`
	InEdges     []int    `json:"inEdges"`
	OutEdges    []int    `json:"outEdges"`
	Source      bool     `json:"source"`
}

// Edge connects the last operator of one vertex to the first of another.
type Edge struct {
	ID           int    `json:"id"`
	Source       int    `json:"source"`
	Target       int    `json:"target"`
	Partitioning string `json:"partitioning"`
	Key          string `json:"key,omitempty"` // hash edges: the key_by's key
	Schema       Schema `json:"schema"`        // of the records on this edge
	// SideOf and Tag name the side output this edge carries (input: OPERATOR.TAG): the
	// records operator SideOf emits to RuntimeContext.SideOutput(Tag); empty for the main
	// output.
	SideOf string `json:"sideOf,omitempty"`
	Tag    string `json:"tag,omitempty"`

	// Input is the logical input of the target's head this edge feeds: 0, or 0 (left) and 1
	// (right) for a join.
	Input int `json:"input,omitempty"`

	partitioner EdgeKeyer // hash edges: the key_by (or a join's side), whose key selects the target
}

// EdgeKeyer is what a hash edge routes by: a key_by, or one side of a join keying its own
// inputs (KeyedInputs).
type EdgeKeyer interface {
	Key() KeyInfo
	NewKeySelector(ctx context.Context) KeySelector
}

// KeyedInputs is implemented by the Definition of a two-input operator that keys each of its
// inputs itself (a join's left-key and right-key): the planner makes every input a hash edge
// routed by InputKey(i), so that equal keys of both inputs meet in one subtask. Both keys
// must encode equal values to equal bytes (the same kind), as they are hashed to key groups
// alike. InputKey is valid after Plan; its Expr after Check.
type KeyedInputs interface {
	InputKey(input int) EdgeKeyer
}

// opInfo is the planned form of one operator.
type opInfo struct {
	spec        *OperatorSpec
	def         Definition
	shape       Shape
	index       int       // in the spec, for deterministic order
	in          *opInfo   // the first input; nil for a source
	ins         []*opInfo // every input, in order (two for a join)
	inTag       string    // the side output of in this one-input operator reads; empty: its main output
	consumers   []*opInfo // of the main output
	parallelism int
	schema      Schema   // output schema; a Partitioner passes its input's through
	key         *KeyInfo // a Partitioner's key, after Plan
	vertex      int
	tsField     *timestampField // the `timestamp:` field, resolved against schema
	// timestamped: the operator's output records carry event time (it or an operator
	// upstream assigns timestamps, or it stamps its results, as a window does).
	timestamped bool
	// deferred: the schema is known only where the input is read (a csv
	// source taking its fields from the file's header, and everything
	// downstream of it), so only the graph's shape is checked here.
	deferred bool
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// celReserved are identifiers CEL refuses as variable names.
var celReserved = []string{"true", "false", "null", "in", "as", "break", "const", "continue", "else",
	"for", "function", "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}

// CheckFieldName refuses a field name that expressions could not use (option opt of op names
// it): every field an operator adds must be a CEL identifier.
func CheckFieldName(op *OperatorSpec, opt, name string) error {
	if !identRE.MatchString(name) || slices.Contains(celReserved, name) {
		return op.errf(opt, "field name %q must be an identifier usable in CEL (letters, digits, '_', not a reserved word)", name)
	}
	return nil
}

// PlanOptions are the cluster settings a plan depends on, and what only a TaskManager (or a
// local run) can give it. The JobManager and every TaskManager must build a job's plan with the
// same DefaultParallelism and MaxExpressionCost.
type PlanOptions struct {
	// DefaultParallelism applies where neither the operator nor the job sets one.
	DefaultParallelism int
	// MaxExpressionCost bounds the estimated and the actual cost of one evaluation of an
	// expression (pipeline.expression.max-cost); 0 means DefaultMaxExpressionCost.
	MaxExpressionCost uint64
	// CSVHeader reads the header line of a csv source that lists no fields. Nil defers
	// the schema of such a source, and of everything downstream of it, to the runtime:
	// the plan is then checked for its shape only and cannot run. The JobManager plans
	// so, because it never opens a job's data.
	CSVHeader func(op *OperatorSpec) ([]string, error)
	// MaxParallelism is the job's pipeline.max-parallelism: the number of key groups and
	// of source splits, at least every operator's parallelism; 0 means
	// DefaultMaxParallelism. The JobManager and every TaskManager must plan with the same
	// value, or keys would reach different subtasks.
	MaxParallelism int
	// StateTTL is the job's state.ttl: how long a regular join keeps a record when the join
	// sets no ttl of its own; 0 keeps every record.
	StateTTL time.Duration
}

// DefaultMaxParallelism is pipeline.max-parallelism's default, as registered in
// internal/config.
const DefaultMaxParallelism = 128

// Plan is PlanWith with default options but the parallelism. It never reads a job's data.
func (s *Spec) Plan(defaultParallelism int) (*Plan, error) {
	return s.PlanWith(PlanOptions{DefaultParallelism: defaultParallelism})
}

// PlanWith validates the graph, compiles every expression against its input schema and chains
// operators into vertices. What the subtasks share (compiled expressions) is prepared by each
// operator's Definition.Plan and kept in the spec's options, so a Spec is planned from one
// goroutine at a time, and the plan last made of it is the one to run.
func (s *Spec) PlanWith(opts PlanOptions) (*Plan, error) {
	defaultParallelism := opts.DefaultParallelism
	if defaultParallelism < 1 {
		defaultParallelism = 1
	}
	if s.Parallelism > 0 {
		defaultParallelism = s.Parallelism
	}
	ops := make(map[string]*opInfo, len(s.Operators))
	for i, o := range s.Operators {
		ops[o.Name] = &opInfo{spec: o, def: o.Options, shape: o.shape, index: i, vertex: -1}
	}
	for _, o := range s.Operators {
		oi := ops[o.Name]
		names := o.InputNames()
		for i, name := range names {
			in, ok := ops[name]
			tag := ""
			if !ok {
				if len(names) != 1 {
					return nil, o.errf(o.inputOption(i), "unknown operator %q: known operators are %s", name, strings.Join(opNames(s), ", "))
				}
				// A one-input operator may read a side output: OPERATOR.NAME.
				var err error
				if in, tag, err = sideInput(s, ops, o); err != nil {
					return nil, err
				}
			}
			if in.shape.Sink {
				return nil, o.errf(o.inputOption(i), "%q is a %s sink and has no output", name, in.spec.Type)
			}
			oi.ins = append(oi.ins, in)
			oi.inTag = tag
			if tag == "" {
				in.consumers = append(in.consumers, oi)
			}
		}
		if len(oi.ins) > 0 {
			oi.in = oi.ins[0]
		}
	}
	order, err := topoOrder(s, ops)
	if err != nil {
		return nil, err
	}

	maxPar := opts.MaxParallelism
	if maxPar == 0 {
		maxPar = DefaultMaxParallelism
	}
	if err := keygroup.CheckMaxParallelism(maxPar); err != nil {
		return nil, fmt.Errorf("%w: set -D pipeline.max-parallelism=N with N in 1..%d", err, keygroup.MaxParallelism)
	}
	p := &Plan{Name: s.Name, Bounded: true, MaxParallelism: maxPar, ops: ops, spec: s, opts: opts}
	for _, oi := range order {
		o := oi.spec
		if oi.in == nil && !oi.shape.Bounded {
			p.Bounded = false
		}
		switch {
		case o.Parallelism > 0:
			oi.parallelism = o.Parallelism
		default:
			oi.parallelism = defaultParallelism
		}
		if m := oi.shape.MaxSubtasks; m > 0 && oi.parallelism > m {
			oi.parallelism = m
		}
		// Every subtask of a keyed operator owns at least one key group, and every
		// source subtask at least one split: the key groups bound the parallelism.
		if oi.parallelism > maxPar {
			return nil, fmt.Errorf("operator %q (line %d): parallelism %d exceeds pipeline.max-parallelism (%d): every subtask needs a key group or source split of its own; raise pipeline.max-parallelism (sluice run -D pipeline.max-parallelism=%d) or lower the parallelism",
				o.Name, o.Line, oi.parallelism, maxPar, oi.parallelism)
		}
	}
	for _, oi := range order {
		if err := oi.checkShape(); err != nil {
			return nil, err
		}
		if slices.ContainsFunc(oi.ins, func(in *opInfo) bool { return in.deferred }) {
			oi.deferred = true
			continue
		}
		if err := oi.plan(opts, p.Bounded); err != nil {
			return nil, err
		}
	}
	p.chain(order)
	return p, nil
}

func opNames(s *Spec) []string {
	n := make([]string, len(s.Operators))
	for i, o := range s.Operators {
		n[i] = o.Name
	}
	return n
}

// topoOrder orders operators so each comes after its input, keeping spec order among equals so
// vertex and edge ids are the same wherever the plan is built.
func topoOrder(s *Spec, ops map[string]*opInfo) ([]*opInfo, error) {
	done := make(map[*opInfo]bool, len(ops))
	var order []*opInfo
	for len(order) < len(ops) {
		progress := false
		for _, o := range s.Operators {
			oi := ops[o.Name]
			if done[oi] || slices.ContainsFunc(oi.ins, func(in *opInfo) bool { return !done[in] }) {
				continue
			}
			done[oi] = true
			order = append(order, oi)
			progress = true
		}
		if !progress {
			for _, o := range s.Operators {
				oi := ops[o.Name]
				if done[oi] {
					continue
				}
				// Every undone operator has an undone input, so walking undone inputs from
				// any undone operator must revisit one: that loop is the cycle.
				path := []string{}
				seen := map[*opInfo]int{}
				next := func(cur *opInfo) *opInfo {
					for _, in := range cur.ins {
						if !done[in] {
							return in
						}
					}
					return nil
				}
				for cur := oi; cur != nil; cur = next(cur) {
					if at, ok := seen[cur]; ok {
						path = append(path[at:], cur.spec.Name)
						c := ops[path[0]].spec
						return nil, c.errf("input", "cycle: %s", strings.Join(path, " -> "))
					}
					seen[cur] = len(path)
					path = append(path, cur.spec.Name)
				}
			}
			return nil, errors.New("job spec: the operators' inputs cannot be ordered")
		}
	}
	return order, nil
}

// checkShape checks what does not depend on the schema: which operator may follow which.
func (oi *opInfo) checkShape() error {
	o := oi.spec
	if len(oi.ins) == 2 {
		if _, ok := oi.def.(KeyedInputs); oi.shape.KeyedInput && !ok {
			// A mistake in the type's code, not in the spec.
			return o.errf("type", "type %s has two keyed inputs but is not a dataflow.KeyedInputs", o.Type)
		}
		for i, in := range oi.ins {
			if in.shape.Partitioner {
				return o.errf(o.inputOption(i), "%q is a %s: a %s keys its inputs itself (left-key, right-key): read from the %s's input %q instead", in.spec.Name, in.spec.Type, o.Type, in.spec.Type, in.spec.Input)
			}
		}
		return nil
	}
	switch {
	case oi.in == nil:
	case oi.shape.Partitioner && oi.in.shape.Partitioner:
		return o.errf("input", "%q is already a %s: key once, by a combined expression", o.Input, oi.in.spec.Type)
	case oi.shape.KeyedInput && !oi.in.shape.Partitioner:
		return o.errf("input", "%s needs a keyed input: %q is a %s, put a key_by between them", o.Type, o.Input, oi.in.spec.Type)
	}
	return nil
}

// plan derives the operator's output schema and lets its definition prepare what its
// subtasks share; its input is planned already.
func (oi *opInfo) plan(opts PlanOptions, bounded bool) error {
	pc := &PlanContext{Op: oi.spec, Bounded: bounded, opts: opts, Timestamped: len(oi.ins) > 0}
	for _, in := range oi.ins {
		pc.Timestamped = pc.Timestamped && in.timestamped
	}
	switch {
	case oi.inTag != "":
		// A side output is not keyed, whatever its operator's input was.
		pc.Inputs = []Schema{oi.in.def.(SideOutputs).SideOutputSchema(oi.inTag)}
		pc.Keys = []*KeyInfo{nil}
	default:
		for _, in := range oi.ins {
			pc.Inputs = append(pc.Inputs, in.schema)
			pc.Keys = append(pc.Keys, in.key)
		}
	}
	schema, err := oi.def.Plan(pc)
	if errors.Is(err, ErrSchemaDeferred) {
		oi.deferred = true
		return nil
	}
	if err != nil {
		return err
	}
	oi.schema = schema
	if oi.tsField, err = resolveTimestamp(oi.spec, schema); err != nil {
		return err
	}
	_, stamps := oi.def.(TimestampingOperator)
	oi.timestamped = pc.Timestamped || oi.tsField != nil || stamps
	if p, ok := oi.def.(Partitioner); ok && oi.shape.Partitioner {
		k := p.Key()
		oi.key = &k
	}
	return nil
}

// chain groups operators into vertices and creates the edges between them.
func (p *Plan) chain(order []*opInfo) {
	newVertex := func(oi *opInfo) *Vertex {
		v := &Vertex{ID: len(p.Vertices), Parallelism: oi.parallelism, Source: oi.in == nil,
			InEdges: []int{}, OutEdges: []int{}}
		p.Vertices = append(p.Vertices, v)
		return v
	}
	addEdge := func(from, to *Vertex, part string, schema Schema, keyer EdgeKeyer, input int, reader *opInfo) {
		e := &Edge{ID: len(p.Edges), Source: from.ID, Target: to.ID, Partitioning: part, Schema: schema, Input: input}
		if reader.inTag != "" {
			e.SideOf, e.Tag = reader.in.spec.Name, reader.inTag
		}
		if keyer != nil {
			e.partitioner = keyer
			e.Key = keyer.Key().Expr // known before Plan: a deferred plan shows it too
		}
		p.Edges = append(p.Edges, e)
		from.OutEdges = append(from.OutEdges, e.ID)
		to.InEdges = append(to.InEdges, e.ID)
	}
	for _, oi := range order {
		if oi.shape.Partitioner {
			continue // not a vertex: it shapes the edges to its consumers
		}
		var v *Vertex
		switch in := oi.in; {
		case in == nil:
			v = newVertex(oi)
		case len(oi.ins) > 1:
			// A two-input operator starts a vertex: its task reads both inputs through one
			// gate, aligning barriers and taking the minimum watermark over all channels.
			v = newVertex(oi)
			ki, _ := oi.def.(KeyedInputs)
			for i, in := range oi.ins {
				part := PartitionRebalance
				var keyer EdgeKeyer
				switch {
				case ki != nil:
					part, keyer = PartitionHash, ki.InputKey(i)
				case in.parallelism == oi.parallelism:
					part = PartitionForward
				}
				addEdge(p.Vertices[in.vertex], v, part, in.schema, keyer, i, oi)
			}
		case in.shape.Partitioner:
			v = newVertex(oi)
			addEdge(p.Vertices[in.in.vertex], v, PartitionHash, in.schema, in.def.(Partitioner), 0, in) // in reads the side output, if any
		case in.parallelism == oi.parallelism && len(in.consumers) == 1 && oi.inTag == "":
			v = p.Vertices[in.vertex]
		default:
			v = newVertex(oi)
			part := PartitionRebalance
			if in.parallelism == oi.parallelism {
				part = PartitionForward
			}
			schema := in.schema
			if oi.inTag != "" {
				schema = in.def.(SideOutputs).SideOutputSchema(oi.inTag)
			}
			addEdge(p.Vertices[in.vertex], v, part, schema, nil, 0, oi)
		}
		oi.vertex = v.ID
		v.Operators = append(v.Operators, oi.spec.Name)
		v.Name = strings.Join(v.Operators, " -> ")
	}
}

// Compile prepares a plan for RunSubtask. Plans from Spec.Plan are compiled already; a plan
// decoded from JSON carries no expressions, so it must be rebuilt from the spec instead.
func (p *Plan) Compile() error {
	if p.ops == nil {
		return errors.New("plan has no compiled operators: build it with ParseSpec and Spec.Plan from the job spec")
	}
	if d := p.Deferred(); len(d) > 0 {
		return fmt.Errorf("plan %q cannot run: the schema of %s is read from the input at run time: build it with Spec.PlanWith and PlanOptions.CSVHeader", p.Name, strings.Join(d, ", "))
	}
	return nil
}

// Deferred lists the operators whose schema the plan leaves to the runtime (see PlanOptions).
func (p *Plan) Deferred() []string {
	var out []string
	if p.spec == nil {
		return nil // decoded from JSON: Compile refuses it anyway
	}
	for _, o := range p.spec.Operators {
		if oi := p.ops[o.Name]; oi != nil && oi.deferred {
			out = append(out, o.Name)
		}
	}
	return out
}

// InputChannels returns how many producers feed one subtask of the vertex: each must close its
// partition before the subtask's input ends.
func (p *Plan) InputChannels(vertex int) int {
	if vertex < 0 || vertex >= len(p.Vertices) {
		return 0
	}
	n := 0
	for _, id := range p.Vertices[vertex].InEdges {
		e := p.Edges[id]
		if e.Partitioning == PartitionForward {
			n++
		} else {
			n += p.Vertices[e.Source].Parallelism
		}
	}
	return n
}

// InputGroup is one in-edge of a vertex's input gate, as the gate numbers its channels: the
// groups of InputLayout follow each other, a group's channels are its source subtasks in
// order (one for a forward edge, from the consumer's own subtask). network.GateInput and the
// deployment's InputGroup carry the same fields.
type InputGroup struct {
	Edge     int
	Channels int
	Forward  bool
	Input    int // the logical input of the vertex's head it feeds (0; 0 or 1 for a join)
}

// InputLayout is the channel layout of the input gate of every subtask of the vertex: its
// in-edges in edge id order. The producers and the consumer of a channel compute its index
// from it, so the task knows which input a channel feeds.
func (p *Plan) InputLayout(vertex int) []InputGroup {
	if vertex < 0 || vertex >= len(p.Vertices) {
		return nil
	}
	ids := slices.Clone(p.Vertices[vertex].InEdges)
	slices.Sort(ids)
	out := make([]InputGroup, 0, len(ids))
	for _, id := range ids {
		e := p.Edges[id]
		g := InputGroup{Edge: id, Channels: p.Vertices[e.Source].Parallelism, Input: e.Input}
		if e.Partitioning == PartitionForward {
			g.Channels, g.Forward = 1, true
		}
		out = append(out, g)
	}
	return out
}

// ChannelIndex is the index, in the target's input gate, of the channel of the edge from
// source subtask sourceSubtask (InputLayout); -1 when the edge has no such channel.
func (p *Plan) ChannelIndex(edge, sourceSubtask int) int {
	if edge < 0 || edge >= len(p.Edges) {
		return -1
	}
	base := 0
	for _, g := range p.InputLayout(p.Edges[edge].Target) {
		if g.Edge == edge {
			if g.Forward {
				return base
			}
			return base + sourceSubtask
		}
		base += g.Channels
	}
	return -1
}

// channelInputs is the logical input of each channel of the vertex's gate.
func (p *Plan) channelInputs(vertex int) []int {
	var out []int
	for _, g := range p.InputLayout(vertex) {
		for range g.Channels {
			out = append(out, g.Input)
		}
	}
	return out
}

// Targets returns the target subtasks producer subtask s of the edge writes to.
func (p *Plan) Targets(edge int, sourceSubtask int) []int {
	if edge < 0 || edge >= len(p.Edges) {
		return nil
	}
	e := p.Edges[edge]
	if e.Partitioning == PartitionForward {
		return []int{sourceSubtask}
	}
	n := p.Vertices[e.Target].Parallelism
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
