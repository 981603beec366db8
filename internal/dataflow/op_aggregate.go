package dataflow

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
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
	Function string `yaml:"function"`
	Field    string `yaml:"field" want:"a field name or path (bid.price)"` // not for count
	As       string `yaml:"as" want:"a field name"`                        // the output field; default: the function

	// After Plan.
	hasField bool      // false for count
	path     FieldPath // of the field in the input
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
	a.hasField, a.bounded = false, pc.Bounded
	var out Kind
	switch a.Function {
	case "count":
		out = KindInt
	default:
		p, fk, err := in.Resolve(a.Field)
		if err != nil {
			return nil, o.errf("field", "%v", err)
		}
		if fk == KindStruct {
			return nil, o.errf("field", "%q is a nested object: aggregate one of its fields", a.Field)
		}
		a.hasField, a.path = true, p
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
	return Schema{{Name: key.Name, Kind: key.Kind}, {Name: a.As, Kind: out}}, nil
}

// Access implements Definition.
func (a *AggregateOptions) Access(*OperatorSpec) []Access { return nil }

// NewOperator implements Definition.
func (a *AggregateOptions) NewOperator() Operator {
	return &aggregateOp{function: a.Function, hasField: a.hasField, field: a.path, bounded: a.bounded, rec: make(Record, 2)}
}

// aggState is the running aggregate of one key.
type aggState struct {
	count  int64 // records seen
	n      int64 // non-null values folded
	isum   int64
	fsum   float64
	float  bool // a float was summed: the sum is a float
	minmax Value
}

// aggCodec encodes an aggState in a fixed layout, the format of the state's bytes in the
// backend and in its snapshots: a format byte (aggFormat), then count, n and isum as 8-byte little-endian integers, fsum as
// the 8 bytes of its IEEE 754 bits, one byte for float (0 or 1), then minmax as a record of one
// value. The fixed layout costs no varint work per record; the aggregate reads and rewrites its
// state for every record, so this is on the hot path.
type aggCodec struct{ scratch Record }

// aggFormat is the first byte of an encoded aggState. The earlier encoding, a record of six
// values, starts with its value count 6, so state in that format is refused with an error
// rather than misread.
const aggFormat = 0xa2

// aggFixedLen is the length of the fixed part of an encoded aggState.
const aggFixedLen = 1 + 4*8 + 1

func (c *aggCodec) Append(dst []byte, st aggState) []byte {
	dst = append(dst, aggFormat)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(st.count))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(st.n))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(st.isum))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(st.fsum))
	f := byte(0)
	if st.float {
		f = 1
	}
	dst = append(dst, f)
	// The tail is a record of one value, as AppendRecord writes it: a count of 1, then the value.
	return appendValue(append(dst, 1), st.minmax)
}

func (c *aggCodec) Decode(b []byte) (aggState, error) {
	if len(b) < aggFixedLen+2 {
		return aggState{}, fmt.Errorf("aggregate state: malformed accumulator of %d bytes, want at least %d", len(b), aggFixedLen+2)
	}
	if b[0] != aggFormat {
		return aggState{}, fmt.Errorf("aggregate state: accumulator in format %#x, want %#x (state written by another sluice version)", b[0], aggFormat)
	}
	if b[33] > 1 {
		return aggState{}, fmt.Errorf("aggregate state: malformed accumulator: float flag %d, want 0 or 1", b[33])
	}
	if err := DecodeRecord(b[aggFixedLen:], &c.scratch); err != nil {
		return aggState{}, fmt.Errorf("aggregate state: %w", err)
	}
	if len(c.scratch) != 1 {
		return aggState{}, fmt.Errorf("aggregate state: malformed accumulator: %d min/max values, want 1", len(c.scratch))
	}
	// minmax aliases b, which the backend may reuse: the state keeps its own copy.
	return aggState{
		count:  int64(binary.LittleEndian.Uint64(b[1:])),
		n:      int64(binary.LittleEndian.Uint64(b[9:])),
		isum:   int64(binary.LittleEndian.Uint64(b[17:])),
		fsum:   math.Float64frombits(binary.LittleEndian.Uint64(b[25:])),
		float:  b[33] == 1,
		minmax: c.scratch[0].Clone(),
	}, nil
}

// aggregateOp folds records per key into a state.Value of the keyed state backend. On bounded
// input it emits each key's final value when the input ends (sorted by key, so output is
// deterministic); on unbounded input there is no end, so it emits the updated value after every
// record, like Flink's keyed reduce.
type aggregateOp struct {
	function string
	hasField bool
	field    FieldPath
	bounded  bool
	rc       *RuntimeContext
	acc      *state.Value[aggState]
	rec      Record
	el       Element
	out      Output
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
	st.count++
	if a.hasField {
		if err := a.fold(&st, a.field.Get(r)); err != nil {
			return err
		}
	}
	if err := a.acc.Set(st); err != nil {
		return err
	}
	if a.bounded {
		return nil
	}
	a.result(a.rc.CurrentKey(), &st)
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

func (a *aggregateOp) result(key Value, st *aggState) {
	a.rec[0] = key
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
		a.result(all[i].key, &all[i].st)
		if err := a.out.Collect(&a.el); err != nil {
			return err
		}
	}
	return nil
}

// Close leaves the state to the task, which closes the backend after its operators.
func (a *aggregateOp) Close() error { return nil }
