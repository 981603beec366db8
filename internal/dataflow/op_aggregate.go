package dataflow

import (
	"context"
	"fmt"
	"slices"
)

// TypeAggregate folds the records of each key of a keyed input: count, sum, min, max or avg.
const TypeAggregate = "aggregate"

func init() {
	Register(OperatorType{Name: TypeAggregate, New: func() Definition { return new(AggregateOptions) }})
}

// AggregateOptions are the options of an aggregate.
type AggregateOptions struct {
	Function string `yaml:"function"`
	Field    string `yaml:"field" want:"a field name"` // not for count
	As       string `yaml:"as" want:"a field name"`    // the output field; default: the function

	// After Plan.
	fieldIdx int // in the input, -1 for count
	bounded  bool
}

// Check implements Definition.
func (a *AggregateOptions) Check(op *OperatorSpec) (Shape, error) {
	switch a.Function {
	case "":
		return Shape{}, op.errf("function", "missing required option: one of count, sum, min, max, avg")
	case "count":
		if a.Field != "" {
			return Shape{}, op.errf("field", "count takes no field")
		}
	case "sum", "min", "max", "avg":
		if a.Field == "" {
			return Shape{}, op.errf("field", "missing required option")
		}
	default:
		return Shape{}, op.errf("function", "unknown function %q: want count, sum, min, max or avg", a.Function)
	}
	if a.As == "" {
		a.As = a.Function
	}
	return Shape{Inputs: 1, KeyedInput: true}, nil
}

// Plan implements Definition: the output is (key, result).
func (a *AggregateOptions) Plan(pc *PlanContext) (Schema, error) {
	o, in, key := pc.Op, pc.Inputs[0], pc.Keys[0]
	a.fieldIdx, a.bounded = -1, pc.Bounded
	var out Kind
	switch a.Function {
	case "count":
		out = KindInt
	default:
		a.fieldIdx = in.Index(a.Field)
		if a.fieldIdx < 0 {
			return nil, o.errf("field", "unknown field %q: input has fields %s", a.Field, listOrNone(in.Names()))
		}
		fk := in[a.fieldIdx].Kind
		switch a.Function {
		case "sum", "avg":
			if fk != KindInt && fk != KindFloat && fk != KindAny {
				return nil, o.errf("field", "%s needs a number, %q is %s", a.Function, a.Field, fk)
			}
			out = fk
			if a.Function == "avg" {
				out = KindFloat
			}
		default:
			out = fk
		}
	}
	if err := checkFieldName(o, "as", a.As); err != nil {
		return nil, err
	}
	if a.As == key.Name {
		return nil, o.errf("as", "output field %q collides with the key field: choose another name", a.As)
	}
	return Schema{{key.Name, key.Kind}, {a.As, out}}, nil
}

// Access implements Definition.
func (a *AggregateOptions) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition.
func (a *AggregateOptions) NewOperator() Operator {
	return &aggregateOp{function: a.Function, field: a.fieldIdx, bounded: a.bounded,
		state: map[string]*aggState{}, rec: make(Record, 2)}
}

// aggState is the running aggregate of one key.
type aggState struct {
	key    Value
	count  int64 // records seen
	n      int64 // non-null values folded
	isum   int64
	fsum   float64
	float  bool // a float was summed: the sum is a float
	minmax Value
}

// aggregateOp folds records per key. On bounded input it emits each key's final value when the
// input ends (sorted by key, so output is deterministic); on unbounded input there is no end, so
// it emits the updated value after every record, like Flink's keyed reduce.
//
// It keeps its own map of keys until keyed state reaches operators through the
// RuntimeContext (a later migration step); that map is neither checkpointed nor restored.
type aggregateOp struct {
	function string
	field    int
	bounded  bool
	key      KeySelector
	state    map[string]*aggState
	keyBuf   []byte
	rec      Record
	el       Element
	out      Output
}

func (a *aggregateOp) Open(_ context.Context, rc *RuntimeContext) error {
	if rc.inKey == nil {
		return fmt.Errorf("an %s needs a keyed input", TypeAggregate)
	}
	a.key, a.out = rc.inKey, rc.Output
	return nil
}

func (a *aggregateOp) Process(_ int, e *Element) error {
	r := e.Record
	k, err := a.key.Key(r)
	if err != nil {
		return err
	}
	a.keyBuf = appendValue(a.keyBuf[:0], k)
	st := a.state[string(a.keyBuf)]
	if st == nil {
		st = &aggState{key: k.Clone()} // k may alias the input buffer
		a.state[string(a.keyBuf)] = st
	}
	st.count++
	if a.field >= 0 {
		if err := a.fold(st, r[a.field]); err != nil {
			return err
		}
	}
	if a.bounded {
		return nil
	}
	a.result(st)
	a.el = *e
	a.el.Record = a.rec
	return a.out.Collect(&a.el)
}

func (a *aggregateOp) fold(st *aggState, v Value) error {
	if v.kind == KindNull {
		return nil
	}
	switch a.function {
	case "sum", "avg":
		switch v.kind {
		case KindInt:
			st.isum += v.AsInt()
			st.fsum += v.AsFloat()
		case KindFloat:
			st.float = true
			st.fsum += v.AsFloat()
		default:
			return fmt.Errorf("%s of a %s value %q", a.function, v.kind, v.Text())
		}
	case "min":
		if st.n == 0 || compareValues(v, st.minmax) < 0 {
			st.minmax = v.Clone()
		}
	case "max":
		if st.n == 0 || compareValues(v, st.minmax) > 0 {
			st.minmax = v.Clone()
		}
	}
	st.n++
	return nil
}

func (a *aggregateOp) result(st *aggState) {
	a.rec[0] = st.key
	switch a.function {
	case "count":
		a.rec[1] = Int(st.count)
	case "sum":
		if st.float {
			a.rec[1] = Float(st.fsum)
		} else {
			a.rec[1] = Int(st.isum)
		}
	case "avg":
		if st.n == 0 {
			a.rec[1] = Null()
		} else {
			a.rec[1] = Float(st.fsum / float64(st.n))
		}
	default:
		if st.n == 0 {
			a.rec[1] = Null()
		} else {
			a.rec[1] = st.minmax
		}
	}
}

// Finish emits the final value of every key of a bounded input, sorted by key.
func (a *aggregateOp) Finish() error {
	if !a.bounded {
		return nil
	}
	all := make([]*aggState, 0, len(a.state))
	for _, st := range a.state {
		all = append(all, st)
	}
	slices.SortFunc(all, func(x, y *aggState) int { return compareValues(x.key, y.key) })
	a.el = Element{Record: a.rec}
	for _, st := range all {
		a.result(st)
		if err := a.out.Collect(&a.el); err != nil {
			return err
		}
	}
	return nil
}

func (a *aggregateOp) Close() error {
	a.state = nil
	return nil
}
