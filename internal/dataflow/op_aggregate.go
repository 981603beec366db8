package dataflow

import (
	"context"
	"fmt"
	"slices"

	"github.com/sluice-dev/sluice/internal/state"
)

// TypeAggregate folds the records of each key of a keyed input: count, sum, min, max or avg.
const TypeAggregate = "aggregate"

func init() {
	Register(OperatorType{Name: TypeAggregate, New: func() Definition { return new(AggregateOptions) }})
}

// AggregateOptions are the options of an aggregate.
type AggregateOptions struct {
	AggFunction `yaml:",inline"`

	// After Plan.
	fn      aggFunc
	bounded bool
}

// Check implements Definition.
func (a *AggregateOptions) Check(op *OperatorSpec) (Shape, error) {
	if err := a.AggFunction.check(op); err != nil {
		return Shape{}, err
	}
	return Shape{Inputs: 1, KeyedInput: true}, nil
}

// Plan implements Definition: the output is (key, result).
func (a *AggregateOptions) Plan(pc *PlanContext) (Schema, error) {
	o, in, key := pc.Op, pc.Inputs[0], pc.Keys[0]
	a.bounded = pc.Bounded
	fn, out, err := a.AggFunction.plan(o, in)
	if err != nil {
		return nil, err
	}
	a.fn = fn
	if a.As == key.Name {
		return nil, o.errf("as", "output field %q collides with the key field: choose another name", a.As)
	}
	return Schema{{Name: key.Name, Kind: key.Kind}, {Name: a.As, Kind: out}}, nil
}

// Access implements Definition.
func (a *AggregateOptions) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition.
func (a *AggregateOptions) NewOperator() Operator {
	return &aggregateOp{fn: a.fn, bounded: a.bounded, rec: make(Record, 2)}
}

// aggregateOp folds records per key into a state.Value of the keyed state backend. On bounded
// input it emits each key's final value when the input ends (sorted by key, so output is
// deterministic); on unbounded input there is no end, so it emits the updated value after every
// record, like Flink's keyed reduce.
type aggregateOp struct {
	fn      aggFunc
	bounded bool
	rc      *RuntimeContext
	acc     *state.Value[aggState]
	rec     Record
	el      Element
	out     Output
}

func (a *aggregateOp) Open(_ context.Context, rc *RuntimeContext) error {
	b := rc.KeyedState()
	if rc.inKey == nil || b == nil {
		return fmt.Errorf("an %s needs a keyed input", TypeAggregate)
	}
	acc, err := state.NewValue[aggState](b, "aggregate", &aggCodec{})
	if err != nil {
		return err
	}
	a.rc, a.acc, a.out = rc, acc, rc.Output
	return nil
}

func (a *aggregateOp) Process(_ int, e *Element) error {
	r := e.Record
	st, _, err := a.acc.Get()
	if err != nil {
		return err
	}
	if err := a.fn.add(&st, r); err != nil {
		return err
	}
	if err := a.acc.Set(st); err != nil {
		return err
	}
	if a.bounded {
		return nil
	}
	a.rec[0], a.rec[1] = a.rc.CurrentKey(), a.fn.result(&st)
	a.el = *e
	a.el.Record = a.rec
	return a.out.Collect(&a.el)
}

// Finish emits the final value of every key of a bounded input, sorted by key.
func (a *aggregateOp) Finish() error {
	if !a.bounded {
		return nil
	}
	type final struct {
		key Value
		st  aggState
	}
	b := a.rc.KeyedState()
	var all []final
	var kr Record
	err := b.Keys(a.acc.ID(), func(key []byte, kg int) error {
		// The backend's key is the key's encoding (task.setKey): one value, decoded as a
		// record of one field.
		if err := DecodeRecord(append([]byte{1}, key...), &kr); err != nil || len(kr) != 1 {
			return fmt.Errorf("aggregate state: malformed key %x: %v", key, err)
		}
		k := kr[0].Clone()
		b.SetCurrentKey(key, kg)
		st, ok, err := a.acc.Get()
		if err != nil || !ok {
			return fmt.Errorf("aggregate state of key %s: %v (present: %t)", k.Text(), err, ok)
		}
		all = append(all, final{k, st})
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(x, y final) int { return compareValues(x.key, y.key) })
	a.el = Element{Record: a.rec, Timestamp: NoTimestamp}
	for i := range all {
		a.rec[0], a.rec[1] = all[i].key, a.fn.result(&all[i].st)
		if err := a.out.Collect(&a.el); err != nil {
			return err
		}
	}
	return nil
}

// Close leaves the state to the task, which closes the backend after its operators.
func (a *aggregateOp) Close() error { return nil }
